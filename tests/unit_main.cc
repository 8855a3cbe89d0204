// The unit test binary's main: doctest's, with SIGPIPE ignored as wsgate's main does
// (gateway/server.cc), so a relay test that writes to a socket its peer shut down sees
// EPIPE like the real gateway instead of dying.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <csignal>

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  return doctest::Context(argc, argv).run();
}
