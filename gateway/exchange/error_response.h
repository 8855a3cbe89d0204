// The responses wsgate writes itself when it refuses a request: a status, a one-line
// reason as a text body, and `Connection: close`.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace wsgate::gateway {

const char* status_text(int status);

std::string error_response(int status, std::string_view reason,
                           const std::vector<std::pair<std::string, std::string>>& headers = {});

}  // namespace wsgate::gateway
