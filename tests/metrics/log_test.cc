#include "metrics/log.h"

#include <doctest/doctest.h>

#include <string>

namespace log = wsgate::log;

TEST_CASE("error log: text and JSON lines") {
  CHECK(log::format_line(log::Format::Text, "2026-12-06T23:00:00.000Z", log::Level::Warn,
                         "worker 0: x") == "2026-12-06T23:00:00.000Z warn worker 0: x\n");
  CHECK(log::format_line(log::Format::Json, "2026-12-06T23:00:00.000Z", log::Level::Debug,
                         "a \"quoted\"\nline\x01") ==
        "{\"ts\":\"2026-12-06T23:00:00.000Z\",\"level\":\"debug\","
        "\"msg\":\"a \\\"quoted\\\"\\nline\\u0001\"}\n");
}

TEST_CASE("error log: the minimum level") {
  log::configure(log::Level::Warn, log::Format::Text);
  CHECK_FALSE(log::enabled(log::Level::Debug));
  CHECK_FALSE(log::enabled(log::Level::Info));
  CHECK(log::enabled(log::Level::Warn));
  CHECK(log::enabled(log::Level::Error));
  log::configure(log::Level::Debug, log::Format::Text);
  CHECK(log::enabled(log::Level::Debug));
  log::configure(log::Level::Info, log::Format::Text);  // the default, for other tests
  CHECK_FALSE(log::enabled(log::Level::Debug));
  CHECK(log::enabled(log::Level::Info));
}
