#include "gateway/config_generations.h"

#include <doctest/doctest.h>

#include <memory>
#include <string>

#include "conf/config_loader.h"
#include "proxy/upstream/upstream_pool.h"

namespace wsgate::gateway {
namespace {

conf::ConfigPtr load(const std::string& server) {
  const std::string text =
      "access_log = \"\"\n[[listener]]\naddress = \"127.0.0.1:1\"\n"
      "[[upstream]]\nname = \"app\"\nservers = [\"" +
      server + "\"]\n[[route]]\npath = \"/\"\nupstream = \"app\"\n";
  conf::LoadResult loaded = conf::load_config_text(text, "generations-test.toml");
  if (!loaded.ok()) FAIL(loaded.error->to_string());
  return loaded.config;
}

struct Loaded {
  conf::ConfigPtr config;
  std::shared_ptr<proxy::UpstreamPools> pools;
  explicit Loaded(const std::string& server)
      : config(load(server)), pools(std::make_shared<proxy::UpstreamPools>(*config)) {}
};

TEST_CASE("config generations: a connection's old config keeps its balancers after a reload") {
  Loaded first("127.0.0.1:1001");
  ConfigGenerations g(first.config, nullptr, first.pools, 1);
  conf::ConfigPtr held = g.config();  // what a connection accepted now holds
  CHECK(&*held == first.config.get());
  proxy::Balancers* old_balancers = &g.balancers();

  Loaded second("127.0.0.1:1002");
  g.use(second.config, nullptr, second.pools);
  CHECK(&*g.config() == second.config.get());
  CHECK(&g.balancers() != old_balancers);
  // The held config still finds its own generation's balancers.
  CHECK(&g.balancers_for(*held) == old_balancers);
  CHECK(&g.balancers_for(*g.config()) == &g.balancers());
}

TEST_CASE("config generations: a generation no connection holds is let go") {
  Loaded first("127.0.0.1:1001");
  std::weak_ptr<const conf::Config> watch;
  {
    ConfigGenerations g(first.config, nullptr, first.pools, 1);
    watch = g.config();
    Loaded second("127.0.0.1:1002");
    g.use(second.config, nullptr, second.pools);
    // Nobody holds the first generation's alias: it is gone, and an unknown config finds
    // balancers that select nothing instead of dangling ones.
    CHECK(watch.expired());
    proxy::Balancers& none = g.balancers_for(*first.config);
    CHECK(&none != &g.balancers());
  }
}

}  // namespace
}  // namespace wsgate::gateway
