// The relay's status page (status_page.html, embedded at build time: no file to install, and no
// external script or stylesheet, so it works on a closed network).
#pragma once

#include <string_view>

namespace relay {

/// The whole HTML document served at GET /.
std::string_view status_page_html();

}  // namespace relay
