// The process's open file limit (RLIMIT_NOFILE). Each WebSocket holds two descriptors
// (client and upstream), so the usual soft limit of 1024 would cap a gateway near 500
// connections while the hard limit allows far more.
#pragma once

#include <string>

namespace wsgate::gateway {

// Raises the soft RLIMIT_NOFILE to the hard limit (to the kernel's fs.nr_open when the
// hard limit is unlimited) and returns a line for the log saying what the limit is now
// and what it was. Never lowers it.
std::string raise_open_file_limit();

}  // namespace wsgate::gateway
