#include "conf/config_env.h"

#include "conf/config_loader.h"

namespace wsgate::conf::detail {
namespace {

bool name_start(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

bool name_char(char c) {
  return name_start(c) || (c >= '0' && c <= '9');
}

void expand_node(const std::string& file, toml::node& node, const EnvLookup& lookup) {
  if (toml::table* t = node.as_table()) {
    for (auto&& [key, value] : *t) expand_node(file, value, lookup);
  } else if (toml::array* a = node.as_array()) {
    for (toml::node& element : *a) expand_node(file, element, lookup);
  } else if (toml::value<std::string>* s = node.as_string()) {
    if (s->get().find('$') == std::string::npos) return;
    std::string error;
    std::optional<std::string> expanded = expand_environment(s->get(), &error, lookup);
    if (!expanded) {
      const auto& at = node.source().begin;
      throw ConfigError{file, static_cast<int>(at.line), static_cast<int>(at.column), error};
    }
    s->get() = std::move(*expanded);
  }
}

}  // namespace

std::optional<std::string> expand_environment(std::string_view text, std::string* error,
                                              const EnvLookup& lookup) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '$') {
      out.push_back(text[i]);
      continue;
    }
    if (text.substr(i, 2) == "$$") {  // an escaped "$" (so "$${" is a literal "${")
      out.push_back('$');
      i += 1;
      continue;
    }
    if (text.substr(i, 2) != "${") {
      out.push_back('$');
      continue;
    }
    const std::size_t close = text.find('}', i + 2);
    if (close == std::string_view::npos) {
      *error = "\"${\" without a closing \"}\" (a literal \"$\" is written \"$$\")";
      return std::nullopt;
    }
    const std::string name(text.substr(i + 2, close - i - 2));
    bool valid = !name.empty() && name_start(name[0]);
    for (char c : name) valid = valid && name_char(c);
    if (!valid) {
      *error = "\"${" + name.substr(0, 64) +
               "}\": an environment variable name is letters, digits and '_', not starting "
               "with a digit";
      return std::nullopt;
    }
    const char* value = lookup(name);
    if (value == nullptr) {
      *error = "environment variable " + name + " is not set";
      return std::nullopt;
    }
    out.append(value);
    i = close;
  }
  return out;
}

void expand_environment(const std::string& file, toml::table& root, const EnvLookup& lookup) {
  for (auto&& [key, value] : root) expand_node(file, value, lookup);
}

}  // namespace wsgate::conf::detail
