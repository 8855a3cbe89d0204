// What a session knows about its downstream connection when it starts, so a stream of an
// HTTP/2 connection can be handled by the same H1Session code as a TCP connection.
#pragma once

#include <string>
#include <string_view>

namespace wsgate::gateway {

struct DownstreamFacts {
  std::string client_addr;  // "ip:port"
  std::string client_ip;
  bool tls = false;
  std::string tls_version;                 // "TLSv1.3"; empty on plain connections
  std::string client_subject;              // verified client certificate subject, if any
  std::string_view protocol = "http/1.1";  // for the access log: "http/1.1" or "h2"
};

}  // namespace wsgate::gateway
