// AdminServer (hawser/admin.hpp) on libmicrohttpd: one internal polling thread answers every
// request; the pages and sources are fixed before start(), so that thread only reads them.
#include "hawser/admin.hpp"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>

#include <cctype>
#include <cstring>
#include <map>
#include <vector>

#include "rpc/address.hpp"

namespace hawser {

namespace {

struct Page {
    std::string content_type;
    std::string body;
};

// A numeric address, for MHD_OPTION_SOCK_ADDR.
Result<sockaddr_storage> parse_address(const std::string& listen) {
    auto hp = detail::parse_host_port(listen);
    if (!hp) return hp.error();
    auto bad = [&](const char* why) {
        return Error{Errc::invalid_argument, "admin listen '" + listen + "': " + why};
    };
    unsigned long port = 0;
    try {
        std::size_t used = 0;
        port = std::stoul(hp->port, &used);
        if (used != hp->port.size() || port > 65535) return bad("the port is not 0 to 65535");
    } catch (const std::exception&) {
        return bad("the port is not a number");
    }
    sockaddr_storage storage{};
    auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
    if (inet_pton(AF_INET, hp->host.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(std::uint16_t(port));
    } else if (inet_pton(AF_INET6, hp->host.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(std::uint16_t(port));
    } else {
        return bad("the host must be a numeric IPv4 or IPv6 address");
    }
    return storage;
}

// The name in a Host header ("name", "name:port", "[v6]" or "[v6]:port"), lower-cased.
std::string host_name(std::string_view host) {
    if (host.starts_with('[')) return std::string(host.substr(0, host.find(']') + 1));
    if (auto colon = host.find(':'); colon != std::string_view::npos) host = host.substr(0, colon);
    std::string name(host);
    for (auto& c : name) c = char(std::tolower(static_cast<unsigned char>(c)));
    return name;
}

// IP literals and localhost always; other names only when configured (DNS rebinding).
bool host_allowed(const char* header, const std::vector<std::string>& allowed) {
    if (!header) return true;  // HTTP/1.0 without Host: no browser sends that
    auto name = host_name(header);
    in_addr v4{};
    if (name == "localhost" || name.starts_with('[') || inet_pton(AF_INET, name.c_str(), &v4) == 1)
        return true;
    for (const auto& a : allowed)
        if (a == "*" || host_name(a) == name) return true;
    return false;
}

MHD_Result answer(MHD_Connection* connection, unsigned status, std::string_view content_type,
                  std::string_view body) {
    auto* response = MHD_create_response_from_buffer(body.size(), const_cast<char*>(body.data()),
                                                     MHD_RESPMEM_MUST_COPY);
    if (!response) return MHD_NO;
    MHD_add_response_header(response, "Content-Type", std::string(content_type).c_str());
    MHD_add_response_header(response, "Cache-Control", "no-store");
    MHD_add_response_header(response, "X-Content-Type-Options", "nosniff");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(response, "Allow", "GET, HEAD");
    auto queued = MHD_queue_response(connection, status, response);
    MHD_destroy_response(response);
    return queued;
}

}  // namespace

struct AdminServer::Impl {
    AdminOptions options;
    std::vector<MetricsSource> sources;
    std::map<std::string, Page, std::less<>> pages;
    MHD_Daemon* daemon = nullptr;
    std::uint16_t port = 0;

    static MHD_Result on_request(void* self, MHD_Connection* connection, const char* url,
                                 const char* method, const char*, const char*,
                                 std::size_t* upload_size, void** state) {
        // Answered on the first call, before any body is read: nothing here takes one, so a
        // request that announces one is refused (libmicrohttpd then closes the connection
        // instead of reading it), and a slow body cannot hold a connection slot.
        if (*state) {  // only if a body arrived anyway (chunked): discard it
            *upload_size = 0;
            return MHD_YES;
        }
        *state = self;
        const char* length = MHD_lookup_connection_value(connection, MHD_HEADER_KIND,
                                                         MHD_HTTP_HEADER_CONTENT_LENGTH);
        const char* chunked = MHD_lookup_connection_value(connection, MHD_HEADER_KIND,
                                                          MHD_HTTP_HEADER_TRANSFER_ENCODING);
        bool has_body = (length && std::string_view(length) != "0") || chunked;
        std::string_view m = method;
        auto* impl = static_cast<Impl*>(self);
        if (!host_allowed(
                MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST),
                impl->options.allowed_hosts))
            return answer(connection, MHD_HTTP_FORBIDDEN, "text/plain",
                          "this Host is not served here (admin allowed_hosts)\n");
        if (m != "GET" && m != "HEAD")
            return answer(connection, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", "GET only\n");
        if (has_body)
            return answer(connection, MHD_HTTP_CONTENT_TOO_LARGE, "text/plain",
                          "no request body is taken here\n");
        return impl->serve(connection, url);
    }

    MHD_Result serve(MHD_Connection* connection, std::string_view url) {
        if (url == "/metrics") {
            MetricsText text;
            try {
                for (auto& source : sources) source(text);
            } catch (const std::exception& e) {
                spdlog::error("admin: a metrics source failed: {}", e.what());
                return answer(connection, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain",
                              "a metrics source failed\n");
            }
            return answer(connection, MHD_HTTP_OK, MetricsText::content_type, text.text());
        }
        if (auto page = pages.find(url); page != pages.end())
            return answer(connection, MHD_HTTP_OK, page->second.content_type, page->second.body);
        return answer(connection, MHD_HTTP_NOT_FOUND, "text/plain", "not found\n");
    }
};

AdminServer::AdminServer(AdminOptions options) : impl_(std::make_unique<Impl>()) {
    impl_->options = std::move(options);
}

AdminServer::~AdminServer() {
    stop();
}

void AdminServer::add_metrics(MetricsSource source) {
    if (!impl_->daemon) impl_->sources.push_back(std::move(source));
}

void AdminServer::add_page(std::string path, std::string content_type, std::string body) {
    if (!impl_->daemon) impl_->pages[std::move(path)] = {std::move(content_type), std::move(body)};
}

Result<void> AdminServer::validate(const AdminOptions& options) {
    if (auto address = parse_address(options.listen); !address) return address.error();
    if (options.max_connections == 0 || options.max_connections > 1024)
        return Error{Errc::invalid_argument, "admin max_connections must be 1 to 1024"};
    if (options.timeout.count() < 1000 || options.timeout > std::chrono::hours(1))
        return Error{Errc::invalid_argument, "admin timeout must be 1 s to 1 hour"};
    return {};
}

Result<void> AdminServer::start() {
    if (impl_->daemon) return Error{Errc::invalid_argument, "the admin listener already started"};
    if (auto valid = validate(impl_->options); !valid) return valid;
    auto address = *parse_address(impl_->options.listen);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    if (address.ss_family == AF_INET6) flags |= MHD_USE_IPv6;
    impl_->daemon = MHD_start_daemon(
        flags, 0, nullptr, nullptr, &Impl::on_request, impl_.get(), MHD_OPTION_SOCK_ADDR,
        reinterpret_cast<const sockaddr*>(&address), MHD_OPTION_CONNECTION_LIMIT,
        static_cast<unsigned>(impl_->options.max_connections), MHD_OPTION_CONNECTION_TIMEOUT,
        static_cast<unsigned>((impl_->options.timeout.count() + 999) / 1000),
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, std::size_t(64) << 10, MHD_OPTION_END);
    if (!impl_->daemon)
        return Error{Errc::invalid_argument, "cannot listen on " + impl_->options.listen +
                                                 " for the admin listener (in use?)"};
    const auto* info = MHD_get_daemon_info(impl_->daemon, MHD_DAEMON_INFO_BIND_PORT);
    impl_->port = info ? info->port : 0;
    spdlog::info("admin: /metrics on {} (port {})", impl_->options.listen, impl_->port);
    return {};
}

void AdminServer::stop() {
    if (!impl_->daemon) return;
    MHD_stop_daemon(impl_->daemon);
    impl_->daemon = nullptr;
}

std::uint16_t AdminServer::port() const {
    return impl_->port;
}

}  // namespace hawser
