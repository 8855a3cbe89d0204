// Every live connection of one worker, owned here and listed for the operations that
// reach across them: drain, shed, admin close (by id) and the metrics report. Three
// kinds: HTTP/1.1 connections (until their exchange takes over, or to the end when it
// relays through them), HTTP/2 sessions, and exchanges (one request each; ids come from
// Worker::next_connection_id, in accept order).
//
// remove() hands the object back instead of destroying it: its callbacks may be on the
// stack, so the worker defers the destruction (gateway/dispatcher.h).
// The lists are snapshots: acting on one entry may end others, so check contains()
// before acting on the next. Threading: the worker's thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <unordered_map>
#include <vector>

namespace wsgate::gateway {

class Exchange;
class H1Connection;
class H2Session;

class ConnectionRegistry {
 public:
  ConnectionRegistry();
  ~ConnectionRegistry();
  ConnectionRegistry(const ConnectionRegistry&) = delete;
  ConnectionRegistry& operator=(const ConnectionRegistry&) = delete;

  H1Connection* add(std::unique_ptr<H1Connection> connection);
  H2Session* add(std::unique_ptr<H2Session> session);
  Exchange* add(std::unique_ptr<Exchange> exchange);
  // Null when `x` is not (any more) listed.
  std::unique_ptr<H1Connection> remove(H1Connection* connection);
  std::unique_ptr<H2Session> remove(H2Session* session);
  std::unique_ptr<Exchange> remove(Exchange* exchange);

  bool contains(const H1Connection* connection) const;
  bool contains(const H2Session* session) const;
  bool contains(const Exchange* exchange) const;
  // The live exchange with this id, or null.
  Exchange* find_exchange(std::uint64_t id) const;

  // In id order (accept order).
  std::vector<Exchange*> exchanges() const;
  // HTTP/1.1 connections whose request head is still arriving (no exchange yet).
  std::vector<H1Connection*> connections_reading_head() const;
  // HTTP/1.1 connections with an exchange.
  std::vector<H1Connection*> connections_exchanging() const;
  std::vector<H2Session*> h2_sessions() const;

  std::size_t size() const { return connections_.size() + h2_sessions_.size() + exchanges_.size(); }
  bool empty() const { return size() == 0; }

  // Teardown: the connections first (they detach from their exchanges), then the
  // exchanges, whose relays close both sockets.
  void clear();

 private:
  std::unordered_map<const H1Connection*, std::unique_ptr<H1Connection>> connections_;
  std::unordered_map<const H2Session*, std::unique_ptr<H2Session>> h2_sessions_;
  // By id; a multimap so that an id reused by a later request of the same connection can
  // never hide an exchange that has not ended yet.
  std::multimap<std::uint64_t, std::unique_ptr<Exchange>> exchanges_;
};

}  // namespace wsgate::gateway
