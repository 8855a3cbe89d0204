// wsgate: a WebSocket gateway. Entry point: command line, config, then the Server.
//
//   wsgate -c FILE                  run with FILE
//   wsgate -t FILE | --check-config FILE   validate FILE, exit 0 (ok) or 1
#include <cstdio>
#include <cstring>
#include <string>

#include "conf/config_loader.h"
#include "gateway/server.h"
#include "tls/tls_snapshot.h"

namespace {

void usage(FILE* out) {
  std::fputs(
      "usage: wsgate -c FILE             run with the configuration in FILE\n"
      "       wsgate -t FILE             check FILE and exit (also --check-config FILE)\n"
      "       wsgate --version\n",
      out);
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  bool check_only = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if ((arg == "-c" || arg == "-t" || arg == "--check-config" || arg == "--config") &&
        i + 1 < argc) {
      config_path = argv[++i];
      if (arg == "-t" || arg == "--check-config") check_only = true;
    } else if (arg == "-h" || arg == "--help") {
      usage(stdout);
      return 0;
    } else if (arg == "--version") {
      std::puts("wsgate 0.1.0");
      return 0;
    } else {
      std::fprintf(stderr, "wsgate: unexpected argument \"%s\"\n", arg.c_str());
      usage(stderr);
      return 1;
    }
  }
  if (config_path.empty()) {
    usage(stderr);
    return 1;
  }
  const wsgate::conf::LoadResult loaded = wsgate::conf::load_config(config_path);
  if (!loaded.ok()) {
    std::fprintf(stderr, "%s\n", loaded.error->to_string().c_str());
    return 1;
  }
  if (check_only) {
    // Every certificate and key is loaded too: unreadable, mismatched, expired.
    std::string tls_error;
    if (!wsgate::tls::build_tls_snapshot(*loaded.config, tls_error)) {
      std::fprintf(stderr, "%s\n", tls_error.c_str());
      return 1;
    }
    std::fprintf(stderr, "%s: configuration ok\n", config_path.c_str());
    return 0;
  }
  wsgate::gateway::Server server(loaded.config);
  return server.run();
}
