// Picks the order in which an upstream's servers are tried for one connection.
// One Balancers object per worker: its state is the worker's own, so picking takes no
// lock (each worker rotates independently; over many connections the spread is even).
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "conf/config.h"

namespace wsgate::proxy {

class Balancers {
 public:
  // Round robin: the next server first, then the others in order as retry candidates.
  std::vector<conf::HostPort> candidates(const conf::Upstream& upstream);

 private:
  std::unordered_map<std::string, std::size_t> next_index_;  // by upstream name
};

}  // namespace wsgate::proxy
