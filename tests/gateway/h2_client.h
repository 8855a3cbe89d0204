// An HTTP/2 client for session tests: an nghttp2 client session over a Peer (the
// gateway's h2c listener, prior knowledge). It records every stream's response and how
// it ended, and the GOAWAY; it can drop its own CONTINUATION frames on the way out (a
// client that never finishes a header block).
#pragma once

#include <nghttp2/nghttp2.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "tests/gateway/session_harness.h"

namespace wsgate::test {

struct H2Response {
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool closed = false;
  bool reset = false;  // the gateway sent RST_STREAM
  uint32_t error_code = 0;
  int status() const {
    for (const auto& [n, v] : headers)
      if (n == ":status") return std::stoi(v);
    return 0;
  }
};

using Fields = std::vector<std::pair<std::string, std::string>>;

inline Fields extended_connect(const std::string& path, Fields extra = {}) {
  Fields f = {
      {":method", "CONNECT"}, {":protocol", "websocket"},     {":scheme", "http"},
      {":path", path},        {":authority", "example.test"}, {"sec-websocket-version", "13"}};
  for (auto& e : extra) f.push_back(std::move(e));
  return f;
}

class H2Client {
 public:
  Peer peer;
  std::map<int32_t, H2Response> streams;
  bool settings_received = false;
  bool goaway = false;
  uint32_t goaway_error = 0;
  bool drop_continuation = false;
  // A stream whose HEADERS go out with these fields instead of the submitted ones, as
  // written (nghttp2 would not send an uppercase name itself). Single-frame blocks only.
  std::map<int32_t, Fields> rewrite_headers;
  std::vector<uint8_t> frame_types_sent;

  explicit H2Client(Peer p, std::vector<nghttp2_settings_entry> settings = {})
      : peer(std::move(p)) {
    nghttp2_session_callbacks* cbs = nullptr;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_send_callback(cbs, &H2Client::send_cb);
    nghttp2_session_callbacks_set_on_header_callback(cbs, &H2Client::on_header_cb);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, &H2Client::on_data_cb);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, &H2Client::on_frame_cb);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, &H2Client::on_close_cb);
    nghttp2_option* opt = nullptr;
    nghttp2_option_new(&opt);
    // The tests send what a hostile client would (uppercase names, extended CONNECT).
    nghttp2_option_set_no_http_messaging(opt, 1);
    // No dynamic table: a rewritten header block cannot disagree with the gateway's.
    nghttp2_option_set_max_deflate_dynamic_table_size(opt, 0);
    nghttp2_session_client_new2(&ng_, cbs, this, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_submit_settings(ng_, NGHTTP2_FLAG_NONE, settings.data(), settings.size());
  }
  ~H2Client() { nghttp2_session_del(ng_); }
  H2Client(const H2Client&) = delete;
  H2Client& operator=(const H2Client&) = delete;

  nghttp2_session* ng() const { return ng_; }

  int32_t submit(const Fields& fields) {
    std::vector<nghttp2_nv> nv;
    for (const auto& [n, v] : fields) {
      nv.push_back({const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(n.data())),
                    const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(v.data())), n.size(),
                    v.size(), NGHTTP2_NV_FLAG_NONE});
    }
    // A data provider that never has data: the stream stays open from our side (no
    // END_STREAM on the HEADERS), as a WebSocket's or a tunnel's does.
    nghttp2_data_provider provider{};
    provider.read_callback = [](nghttp2_session*, int32_t, uint8_t*, size_t, uint32_t*,
                                nghttp2_data_source*,
                                void*) -> ssize_t { return NGHTTP2_ERR_DEFERRED; };
    const int32_t id = nghttp2_submit_request(ng_, nullptr, nv.data(), nv.size(), &provider, this);
    streams[id];
    return id;
  }

  // Sends what nghttp2 has queued (frames only whole: nghttp2 serialises whole frames).
  void flush() {
    nghttp2_session_send(ng_);
    if (!rewrite_headers.empty()) rewrite();
    if (drop_continuation) {
      std::string kept;
      std::size_t at = 0;
      while (at + 9 <= out_.size()) {
        const std::size_t len = (static_cast<uint8_t>(out_[at]) << 16) |
                                (static_cast<uint8_t>(out_[at + 1]) << 8) |
                                static_cast<uint8_t>(out_[at + 2]);
        const bool magic = out_.compare(at, 3, "PRI") == 0;
        const std::size_t size = magic ? 24 : 9 + len;
        if (magic || static_cast<uint8_t>(out_[at + 3]) != NGHTTP2_CONTINUATION)
          kept += out_.substr(at, size);
        at += size;
      }
      out_ = kept;
    }
    record_types(out_);
    unsent_ += out_;
    out_.clear();
    write_pending();
  }
  void write_pending() {
    while (!unsent_.empty()) {
      const std::size_t n = peer.write_some(unsent_);
      if (n == 0) return;
      unsent_.erase(0, n);
    }
  }
  // Reads and handles what the gateway sent.
  void pump() {
    write_pending();
    peer.pump();
    if (fed_ < peer.in.size()) {
      nghttp2_session_mem_recv(ng_, reinterpret_cast<const uint8_t*>(peer.in.data() + fed_),
                               peer.in.size() - fed_);
      fed_ = peer.in.size();
      peer.in.clear();
      fed_ = 0;
    }
    flush();  // SETTINGS acks, WINDOW_UPDATEs
  }

 private:
  void rewrite() {
    std::string result;
    std::size_t at = 0;
    while (at + 9 <= out_.size()) {
      if (out_.compare(at, 3, "PRI") == 0) {
        result += out_.substr(at, 24);
        at += 24;
        continue;
      }
      const std::size_t len = (static_cast<uint8_t>(out_[at]) << 16) |
                              (static_cast<uint8_t>(out_[at + 1]) << 8) |
                              static_cast<uint8_t>(out_[at + 2]);
      const int32_t id = static_cast<int32_t>(
          ((static_cast<uint32_t>(static_cast<uint8_t>(out_[at + 5])) & 0x7f) << 24) |
          (static_cast<uint32_t>(static_cast<uint8_t>(out_[at + 6])) << 16) |
          (static_cast<uint32_t>(static_cast<uint8_t>(out_[at + 7])) << 8) |
          static_cast<uint8_t>(out_[at + 8]));
      auto it = rewrite_headers.find(id);
      if (static_cast<uint8_t>(out_[at + 3]) != NGHTTP2_HEADERS || it == rewrite_headers.end()) {
        result += out_.substr(at, 9 + len);
        at += 9 + len;
        continue;
      }
      nghttp2_hd_deflater* d = nullptr;
      nghttp2_hd_deflate_new(&d, 0);
      std::vector<nghttp2_nv> nv;
      for (const auto& [n, v] : it->second) {
        nv.push_back({const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(n.data())),
                      const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(v.data())), n.size(),
                      v.size(), NGHTTP2_NV_FLAG_NONE});
      }
      std::string block(nghttp2_hd_deflate_bound(d, nv.data(), nv.size()), '\0');
      const ssize_t n = nghttp2_hd_deflate_hd(d, reinterpret_cast<uint8_t*>(block.data()),
                                              block.size(), nv.data(), nv.size());
      nghttp2_hd_deflate_del(d);
      block.resize(static_cast<std::size_t>(n));
      result.push_back(static_cast<char>(block.size() >> 16));
      result.push_back(static_cast<char>(block.size() >> 8));
      result.push_back(static_cast<char>(block.size()));
      result += out_.substr(at + 3, 6);  // type, flags, stream id
      result += block;
      at += 9 + len;
    }
    out_ = result;
  }
  void record_types(const std::string& bytes) {
    std::size_t at = 0;
    while (at + 9 <= bytes.size()) {
      if (bytes.compare(at, 3, "PRI") == 0) {
        at += 24;
        continue;
      }
      const std::size_t len = (static_cast<uint8_t>(bytes[at]) << 16) |
                              (static_cast<uint8_t>(bytes[at + 1]) << 8) |
                              static_cast<uint8_t>(bytes[at + 2]);
      frame_types_sent.push_back(static_cast<uint8_t>(bytes[at + 3]));
      at += 9 + len;
    }
  }
  static ssize_t send_cb(nghttp2_session*, const uint8_t* data, size_t length, int, void* self) {
    static_cast<H2Client*>(self)->out_.append(reinterpret_cast<const char*>(data), length);
    return static_cast<ssize_t>(length);
  }
  static int on_header_cb(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                          size_t namelen, const uint8_t* value, size_t valuelen, uint8_t,
                          void* self) {
    static_cast<H2Client*>(self)->streams[frame->hd.stream_id].headers.emplace_back(
        std::string(reinterpret_cast<const char*>(name), namelen),
        std::string(reinterpret_cast<const char*>(value), valuelen));
    return 0;
  }
  static int on_data_cb(nghttp2_session*, uint8_t, int32_t id, const uint8_t* data, size_t len,
                        void* self) {
    static_cast<H2Client*>(self)->streams[id].body.append(reinterpret_cast<const char*>(data), len);
    return 0;
  }
  static int on_frame_cb(nghttp2_session*, const nghttp2_frame* frame, void* self) {
    auto* c = static_cast<H2Client*>(self);
    if (frame->hd.type == NGHTTP2_SETTINGS && (frame->hd.flags & NGHTTP2_FLAG_ACK) == 0)
      c->settings_received = true;
    if (frame->hd.type == NGHTTP2_GOAWAY) {
      c->goaway = true;
      c->goaway_error = frame->goaway.error_code;
    }
    if (frame->hd.type == NGHTTP2_RST_STREAM) c->streams[frame->hd.stream_id].reset = true;
    return 0;
  }
  static int on_close_cb(nghttp2_session*, int32_t id, uint32_t error_code, void* self) {
    auto& s = static_cast<H2Client*>(self)->streams[id];
    s.closed = true;
    s.error_code = error_code;
    return 0;
  }

  nghttp2_session* ng_ = nullptr;
  std::string out_;
  std::string unsent_;
  std::size_t fed_ = 0;
};

}  // namespace wsgate::test
