// The one translation unit that compiles toml++'s implementation for the fuzz build
// (every other file includes it with TOML_HEADER_ONLY=0, as against Debian's library).
#define TOML_IMPLEMENTATION
#include <toml++/toml.h>
