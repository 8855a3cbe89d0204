// What this binary is: wsgate's version (CMake's project VERSION, the one source of
// truth), the git commit it was built from (cmake/build_id.cmake; "unknown" outside
// git), and the versions of the libraries it runs with (as loaded, not as compiled
// against). Shown by `wsgate -V` and as the labels of wsgate_build_info.
#pragma once

#include <string>

namespace wsgate::metrics {

struct BuildInfo {
  std::string version;  // "0.1.0"
  std::string commit;   // "1a2b3c4d5e6f", "1a2b3c4d5e6f-dirty" or "unknown"
  std::string openssl;  // "3.0.19"
  std::string libevent;
  std::string nghttp2;
};

const BuildInfo& build_info();

// `wsgate -V`: one line for wsgate, one per library.
std::string describe_build();

}  // namespace wsgate::metrics
