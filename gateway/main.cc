// wsgate: a WebSocket gateway. Entry point: command line, config, then the Server.
//
//   wsgate -c FILE                  run with FILE
//   wsgate -t -c FILE, wsgate -c FILE -t, wsgate -t FILE, --check-config FILE
//                                   validate FILE, exit 0 (ok) or 1
//   wsgate -c FILE --takeover [PATH]
//                                   binary upgrade: take the listening sockets over from
//                                   the wsgate running with upgrade_socket PATH
//   wsgate -V | --version           version, git commit, library versions
//   wsgate --hash-password [ITERATIONS]    read a password from stdin, print its hash
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "conf/config_loader.h"
#include "gateway/fd_limit.h"
#include "gateway/server.h"
#include "metrics/build_info.h"
#include "metrics/log.h"
#include "proxy/connect/password_hash.h"
#include "tls/tls_snapshot.h"

namespace {

void usage(FILE* out) {
  std::fputs(
      "usage: wsgate -c FILE             run with the configuration in FILE\n"
      "       wsgate -t -c FILE          check FILE (configuration and certificates) and\n"
      "                                  exit; also -c FILE -t, -t FILE, --check-config FILE\n"
      "       wsgate -c FILE --takeover [PATH]\n"
      "                                  binary upgrade: take the listening sockets over\n"
      "                                  from the wsgate running with upgrade_socket PATH\n"
      "                                  (default: FILE's upgrade_socket); it stops\n"
      "                                  accepting and lets its connections end\n"
      "       wsgate --hash-password [ITERATIONS]\n"
      "                                  read a password (one line) from stdin and print\n"
      "                                  its hash for [[connect.user]] password_hash\n"
      "       wsgate -V                  version, git commit and library versions\n"
      "                                  (also --version)\n"
      "       wsgate -h                  this text (also --help)\n",
      out);
}

// Reads one line from stdin (without its newline) and prints its PBKDF2 hash.
int hash_password(int argc, char** argv) {
  unsigned iterations = wsgate::proxy::kDefaultPbkdf2Iterations;
  if (argc > 2) {
    char* end = nullptr;
    const unsigned long n = std::strtoul(argv[2], &end, 10);
    if (end == argv[2] || *end != '\0' || n < 1000 || n > 10000000) {
      std::fputs("wsgate: --hash-password ITERATIONS must be 1000..10000000\n", stderr);
      return 1;
    }
    iterations = static_cast<unsigned>(n);
  }
  std::string password;
  for (int c = std::getchar(); c != EOF && c != '\n'; c = std::getchar())
    password.push_back(static_cast<char>(c));
  if (!password.empty() && password.back() == '\r') password.pop_back();
  if (password.empty()) {
    std::fputs("wsgate: --hash-password: empty password on stdin\n", stderr);
    return 1;
  }
  const std::string hash = wsgate::proxy::hash_password(password, iterations);
  if (hash.empty()) return 1;
  std::puts(hash.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::strcmp(argv[1], "--hash-password") == 0) return hash_password(argc, argv);
  std::string config_path;
  bool check_only = false;
  bool takeover = false;
  std::string takeover_path;
  // -t is a flag, in any order with -c FILE (as nginx and HAProxy take it); for the
  // older form, a -t directly followed by a word that is not an option takes that word
  // as the file.
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool takes_file = arg == "-c" || arg == "--config" || arg == "--check-config";
    const bool check_flag = arg == "-t" || arg == "--check-config";
    if (check_flag) check_only = true;
    if (takes_file || (arg == "-t" && i + 1 < argc && argv[i + 1][0] != '-')) {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "wsgate: %s needs a file\n", arg.c_str());
        usage(stderr);
        return 1;
      }
      if (!config_path.empty()) {
        std::fprintf(stderr, "wsgate: more than one configuration file given\n");
        return 1;
      }
      config_path = argv[++i];
    } else if (check_flag) {
      // -t alone: the file comes with -c, before or after.
    } else if (arg == "--takeover") {
      takeover = true;
      if (i + 1 < argc && argv[i + 1][0] != '-') takeover_path = argv[++i];
    } else if (arg == "-h" || arg == "--help") {
      usage(stdout);
      return 0;
    } else if (arg == "-V" || arg == "--version") {
      std::fputs(wsgate::metrics::describe_build().c_str(), stdout);
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
  wsgate::gateway::apply_log_settings(*loaded.config);
  // Before any worker opens a socket; each connection holds two descriptors.
  wsgate::log::info(wsgate::gateway::raise_open_file_limit());
  if (takeover && takeover_path.empty()) takeover_path = loaded.config->upgrade_socket;
  if (takeover && takeover_path.empty()) {
    std::fprintf(stderr,
                 "wsgate: --takeover needs the running wsgate's upgrade_socket: give its path, "
                 "or set upgrade_socket in %s\n",
                 config_path.c_str());
    return 1;
  }
  wsgate::gateway::Server server(loaded.config, takeover_path);
  return server.run();
}
