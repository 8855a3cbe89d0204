#include "gateway/connection_registry.h"

#include "gateway/exchange/exchange.h"
#include "gateway/h1/h1_connection.h"
#include "gateway/h2/h2_session.h"

namespace wsgate::gateway {

ConnectionRegistry::ConnectionRegistry() = default;

ConnectionRegistry::~ConnectionRegistry() {
  clear();
}

H1Connection* ConnectionRegistry::add(std::unique_ptr<H1Connection> connection) {
  H1Connection* raw = connection.get();
  connections_.emplace(raw, std::move(connection));
  return raw;
}

H2Session* ConnectionRegistry::add(std::unique_ptr<H2Session> session) {
  H2Session* raw = session.get();
  h2_sessions_.emplace(raw, std::move(session));
  return raw;
}

Exchange* ConnectionRegistry::add(std::unique_ptr<Exchange> exchange) {
  Exchange* raw = exchange.get();
  exchanges_.emplace(raw->id(), std::move(exchange));
  return raw;
}

std::unique_ptr<H1Connection> ConnectionRegistry::remove(H1Connection* connection) {
  auto node = connections_.extract(connection);
  return node.empty() ? nullptr : std::move(node.mapped());
}

std::unique_ptr<H2Session> ConnectionRegistry::remove(H2Session* session) {
  auto node = h2_sessions_.extract(session);
  return node.empty() ? nullptr : std::move(node.mapped());
}

std::unique_ptr<Exchange> ConnectionRegistry::remove(Exchange* exchange) {
  auto [first, last] = exchanges_.equal_range(exchange->id());
  for (auto it = first; it != last; ++it) {
    if (it->second.get() != exchange) continue;
    std::unique_ptr<Exchange> owned = std::move(it->second);
    exchanges_.erase(it);
    return owned;
  }
  return nullptr;
}

bool ConnectionRegistry::contains(const H1Connection* connection) const {
  return connections_.count(connection) != 0;
}

bool ConnectionRegistry::contains(const H2Session* session) const {
  return h2_sessions_.count(session) != 0;
}

bool ConnectionRegistry::contains(const Exchange* exchange) const {
  auto [first, last] = exchanges_.equal_range(exchange->id());
  for (auto it = first; it != last; ++it)
    if (it->second.get() == exchange) return true;
  return false;
}

Exchange* ConnectionRegistry::find_exchange(std::uint64_t id) const {
  const auto it = exchanges_.find(id);
  return it == exchanges_.end() ? nullptr : it->second.get();
}

std::vector<Exchange*> ConnectionRegistry::exchanges() const {
  std::vector<Exchange*> out;
  out.reserve(exchanges_.size());
  for (const auto& [id, exchange] : exchanges_) out.push_back(exchange.get());
  return out;
}

std::vector<H1Connection*> ConnectionRegistry::connections_reading_head() const {
  std::vector<H1Connection*> out;
  for (const auto& [raw, connection] : connections_)
    if (connection->exchange() == nullptr) out.push_back(connection.get());
  return out;
}

std::vector<H1Connection*> ConnectionRegistry::connections_exchanging() const {
  std::vector<H1Connection*> out;
  for (const auto& [raw, connection] : connections_)
    if (connection->exchange() != nullptr) out.push_back(connection.get());
  return out;
}

std::vector<H2Session*> ConnectionRegistry::h2_sessions() const {
  std::vector<H2Session*> out;
  out.reserve(h2_sessions_.size());
  for (const auto& [raw, session] : h2_sessions_) out.push_back(session.get());
  return out;
}

void ConnectionRegistry::clear() {
  h2_sessions_.clear();
  connections_.clear();
  exchanges_.clear();
}

}  // namespace wsgate::gateway
