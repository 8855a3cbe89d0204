#include "proxy/upstream/upstream_connection.h"

#include <event2/buffer.h>

#include <algorithm>
#include <utility>

#include "proxy/relay/socket_io.h"

namespace wsgate::proxy {

UpstreamConnection& UpstreamConnection::operator=(UpstreamConnection&& other) noexcept {
  if (this == &other) return *this;
  reader_.reset();  // this connection's event, before its socket closes
  bev_ = std::move(other.bev_);
  reader_ = std::move(other.reader_);
  return *this;
}

UpstreamConnection::~UpstreamConnection() {
  reader_.reset();
}

void UpstreamConnection::read_plain_socket() {
  if (reader_ || !bev_ || bufferevent_getfd(bev_.get()) < 0) return;
  const bool was_reading = (bufferevent_get_enabled(bev_.get()) & EV_READ) != 0;
  bufferevent_disable(bev_.get(), EV_READ);
  reader_ = std::make_unique<Reader>();
  reader_->bev = bev_.get();
  reader_->watch = ReadWatch(bufferevent_get_base(bev_.get()), bufferevent_getfd(bev_.get()),
                             &UpstreamConnection::on_readable, reader_.get());
  // The input is appended to by read_socket() from now on, not by the bufferevent.
  evbuffer_unfreeze(bufferevent_get_input(bev_.get()), 0);
  reader_->watch.set(was_reading);
}

void UpstreamConnection::set_reading(bool on) {
  if (!bev_) return;
  if (reader_) {
    reader_->watch.set(on);
  } else if (on) {
    bufferevent_enable(bev_.get(), EV_READ);
  } else {
    bufferevent_disable(bev_.get(), EV_READ);
  }
}

void UpstreamConnection::start_small_reads() {
  if (reader_) reader_->read_size = kFirstRead;
}

bool UpstreamConnection::reading() const {
  if (reader_) return reader_->watch.on();
  return bev_ && (bufferevent_get_enabled(bev_.get()) & EV_READ) != 0;
}

BufferEventPtr UpstreamConnection::release() {
  if (reader_) {
    const bool was_reading = reader_->watch.on();
    reader_.reset();
    evbuffer_freeze(bufferevent_get_input(bev_.get()), 0);
    if (was_reading) bufferevent_enable(bev_.get(), EV_READ);
  }
  return std::move(bev_);
}

void UpstreamConnection::reset(bufferevent* bev) {
  reader_.reset();
  bev_.reset(bev);
}

void UpstreamConnection::on_readable(evutil_socket_t fd, short /*what*/, void* arg) {
  auto* r = static_cast<Reader*>(arg);
  bufferevent* bev = r->bev;
  const ev_ssize_t max = bufferevent_get_max_single_read(bev);
  const std::size_t limit = max > 0 ? static_cast<std::size_t>(max) : 4096;
  const std::size_t want = std::min(r->read_size, limit);
  evbuffer* in = bufferevent_get_input(bev);
  const std::size_t before = evbuffer_get_length(in);
  const ReadOutcome got = read_socket(fd, in, want);
  if (got == ReadOutcome::WouldBlock) return;
  // A read that took all it asked for (the reserved space may be larger) left more
  // queued, most likely: take more next time.
  if (evbuffer_get_length(in) - before >= want) r->read_size = std::min(want * 2, limit);
  bufferevent_data_cb on_read = nullptr;
  bufferevent_event_cb on_event = nullptr;
  void* owner = nullptr;
  bufferevent_getcb(bev, &on_read, nullptr, &on_event, &owner);
  if (got == ReadOutcome::Data) {
    if (on_read != nullptr) on_read(bev, owner);  // may destroy this connection
    return;
  }
  // EOF or an error: reported once, as the bufferevent would (it stops reading too).
  r->watch.close();
  const short what = got == ReadOutcome::Eof ? BEV_EVENT_EOF : BEV_EVENT_ERROR;
  if (on_event != nullptr) on_event(bev, static_cast<short>(BEV_EVENT_READING | what), owner);
}

}  // namespace wsgate::proxy
