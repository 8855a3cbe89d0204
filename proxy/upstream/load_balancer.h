// The balancer interface: given the members of one server group (an upstream's primary
// or backup servers) and a snapshot of which may take a connection now and how many
// connections each holds, pick one. One implementation per file (lb_round_robin.cc,
// lb_least_conn.cc, lb_random_two.cc, lb_hash.cc).
//
// A LoadBalancer is owned by one worker (proxy::Balancers) and used only on its thread:
// per-worker state (round-robin positions, the random generator) needs no lock. What is
// shared between workers (connection counts, health) arrives in the snapshot.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "conf/config.h"

namespace wsgate::proxy {

// A server as the balancer sees it; fixed for the balancer's life.
struct Member {
  std::string id;            // "host:port" as configured: the identity hashing uses
  std::uint32_t weight = 1;  // configured weight, >= 1 (the hash table is built from it)
};

// One member's state at the moment of a pick, same index as the members.
struct MemberLoad {
  bool eligible = false;     // healthy, not ejected, below max_connections, not tried yet
  std::uint32_t active = 0;  // connections it holds now (all workers)
  // Effective weight now, >= 1, in any unit common to all members: the configured weight,
  // scaled down while the server is in slow start. round_robin, least_conn and
  // random_two use it; hash keeps its table (stickiness beats ramping).
  std::uint32_t weight = 1;
};

class LoadBalancer {
 public:
  virtual ~LoadBalancer() = default;
  // The index of the chosen member, or nullopt when none is eligible. `now` has one
  // entry per member. `key_hash` is the request's hash key (only Hash reads it).
  virtual std::optional<std::size_t> pick(std::span<const MemberLoad> now,
                                          std::uint64_t key_hash) = 0;
};

// Smooth weighted round robin (nginx): picks in weight proportion, interleaved.
std::unique_ptr<LoadBalancer> make_round_robin(std::vector<Member> members);
// Fewest connections per unit of weight; ties broken by smooth weighted round robin.
std::unique_ptr<LoadBalancer> make_least_conn(std::vector<Member> members);
// Power of two choices: two distinct members drawn by weight, the less loaded wins.
std::unique_ptr<LoadBalancer> make_random_two(std::vector<Member> members, std::uint64_t seed);
// Consistent hashing (Maglev, weighted): the key picks a slot of a table built only from
// the member ids, so every instance with the same config agrees; an ineligible member's
// keys walk on to the next eligible slot, nobody else's keys move.
std::unique_ptr<LoadBalancer> make_hash(std::vector<Member> members);

std::unique_ptr<LoadBalancer> make_load_balancer(conf::Balancer kind, std::vector<Member> members,
                                                 std::uint64_t seed);

}  // namespace wsgate::proxy
