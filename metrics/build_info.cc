#include "metrics/build_info.h"

#include <event2/event.h>
#include <nghttp2/nghttp2.h>
#include <openssl/crypto.h>
#include <openssl/opensslv.h>

#include "wsgate_build_id.h"  // generated: WSGATE_VERSION, WSGATE_GIT_COMMIT

namespace wsgate::metrics {

const BuildInfo& build_info() {
  static const BuildInfo info = [] {
    BuildInfo b;
    b.version = WSGATE_VERSION;
    b.commit = WSGATE_GIT_COMMIT;
    b.openssl = OpenSSL_version(OPENSSL_VERSION_STRING);
    b.libevent = event_get_version();
    const nghttp2_info* ng = nghttp2_version(0);
    b.nghttp2 = ng != nullptr && ng->version_str != nullptr ? ng->version_str : "unknown";
    return b;
  }();
  return info;
}

std::string describe_build() {
  const BuildInfo& b = build_info();
  return "wsgate " + b.version + " (commit " + b.commit + ")\n" + "OpenSSL " + b.openssl +
         " (built with " OPENSSL_VERSION_TEXT ")\n" + "libevent " + b.libevent +
         " (built with " LIBEVENT_VERSION ")\n" + "nghttp2 " + b.nghttp2 +
         " (built with " NGHTTP2_VERSION ")\n";
}

}  // namespace wsgate::metrics
