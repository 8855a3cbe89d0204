// A fixed-bucket histogram as plain counts: one per worker (single writer), merged into
// one at scrape time. Not thread-safe; the owner's thread observes, a copy travels.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace wsgate::metrics {

class Histogram {
 public:
  // `bounds`: ascending upper bounds; the storage they point to must outlive the object
  // (the constexpr arrays in metric_names.h).
  explicit Histogram(std::span<const double> bounds)
      : bounds_(bounds), counts_(bounds.size() + 1, 0) {}

  void observe(double value) {
    std::size_t i = 0;
    while (i < bounds_.size() && value > bounds_[i]) ++i;
    counts_[i]++;  // the last slot is +Inf
    sum_ += value;
    count_++;
  }

  // Adds another histogram with the same bounds.
  void merge(const Histogram& other) {
    for (std::size_t i = 0; i < counts_.size() && i < other.counts_.size(); ++i)
      counts_[i] += other.counts_[i];
    sum_ += other.sum_;
    count_ += other.count_;
  }

  std::span<const double> bounds() const { return bounds_; }
  // Per-bucket (not cumulative) counts; bounds().size() + 1 of them, the last for +Inf.
  const std::vector<uint64_t>& counts() const { return counts_; }
  double sum() const { return sum_; }
  uint64_t count() const { return count_; }

 private:
  std::span<const double> bounds_;
  std::vector<uint64_t> counts_;
  double sum_ = 0;
  uint64_t count_ = 0;
};

}  // namespace wsgate::metrics
