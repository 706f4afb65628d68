// The WebSocket upgrade (see http_upgrade.hpp). Strict on purpose: CRLF line ends, no folded
// headers, no control bytes in values, one of each header that matters.
#include "wire/http_upgrade.hpp"

#include <openssl/evp.h>
#include <sodium.h>

#include <algorithm>
#include <cstdint>
#include <variant>

namespace hawser::detail::http {

namespace {

constexpr std::string_view guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
constexpr std::string_view end_of_head = "\r\n\r\n";

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
               return lower(x) == lower(y);
           });
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// Whether the comma-separated list `value` holds `token` (without case).
bool has_token(std::string_view value, std::string_view token) {
    while (!value.empty()) {
        auto comma = value.find(',');
        if (iequals(trim(value.substr(0, comma)), token)) return true;
        if (comma == std::string_view::npos) break;
        value.remove_prefix(comma + 1);
    }
    return false;
}

bool token_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

struct Head {
    std::string_view start_line;
    std::vector<std::pair<std::string_view, std::string_view>> headers;
    std::size_t size = 0;

    // The value of the one header `name`; nullopt when missing; `twice` set when repeated.
    std::optional<std::string_view> one(std::string_view name, bool& twice) const {
        std::optional<std::string_view> found;
        for (auto& [n, v] : headers)
            if (iequals(n, name)) {
                if (found) twice = true;
                found = v;
            }
        return found;
    }
    // Every value of `name` joined as one list (a header may be sent more than once).
    std::string all(std::string_view name) const {
        std::string out;
        for (auto& [n, v] : headers)
            if (iequals(n, name)) (out += out.empty() ? "" : ",") += v;
        return out;
    }
};

// Splits a complete head (ending in CRLF CRLF) into its lines; an error names what is wrong.
Result<Head> split_head(std::string_view bytes, std::size_t max_headers) {
    Head head;
    auto end = bytes.find(end_of_head);
    head.size = end + end_of_head.size();
    auto text = bytes.substr(0, end + 2);  // every line with its CRLF
    auto line_end = text.find("\r\n");
    head.start_line = text.substr(0, line_end);
    text.remove_prefix(line_end + 2);
    while (!text.empty()) {
        line_end = text.find("\r\n");
        auto line = text.substr(0, line_end);
        text.remove_prefix(line_end + 2);
        if (head.headers.size() == max_headers)
            return Error{Errc::limit_exceeded,
                         "more than " + std::to_string(max_headers) + " header lines"};
        if (line.find('\n') != std::string_view::npos || line.find('\r') != std::string_view::npos)
            return Error{Errc::bad_payload, "a line does not end with CRLF"};
        if (line.front() == ' ' || line.front() == '\t')
            return Error{Errc::bad_payload, "a folded header line"};
        auto colon = line.find(':');
        if (colon == std::string_view::npos || colon == 0)
            return Error{Errc::bad_payload, "a header line without a name"};
        auto name = line.substr(0, colon);
        if (!std::all_of(name.begin(), name.end(), token_char))
            return Error{Errc::bad_payload, "a header name with a character HTTP forbids"};
        auto value = trim(line.substr(colon + 1));
        if (std::any_of(value.begin(), value.end(), [](char c) {
                return (static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f;
            }))
            return Error{Errc::bad_payload, "a header value with a control character"};
        head.headers.emplace_back(name, value);
    }
    // CR and LF included (a tab is allowed, as in a reason phrase); a refusal's status line
    // goes into error texts and logs, where a terminal's escape sequences have no business.
    if (std::any_of(head.start_line.begin(), head.start_line.end(), [](char c) {
            return (static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f;
        }))
        return Error{Errc::bad_payload, "a start line with a control character"};
    return head;
}

RequestOutcome refuse(int status, std::string reason) {
    RequestOutcome out;
    out.state = RequestOutcome::State::refused;
    out.status = status;
    out.reason = std::move(reason);
    return out;
}

bool valid_key(std::string_view key) {
    unsigned char raw[18];
    std::size_t raw_size = 0;
    const char* end = nullptr;
    return key.size() == 24 &&
           sodium_base642bin(raw, sizeof raw, key.data(), key.size(), nullptr, &raw_size, &end,
                             sodium_base64_VARIANT_ORIGINAL) == 0 &&
           end == key.data() + key.size() && raw_size == 16;
}

std::string base64(const unsigned char* bytes, std::size_t size) {
    std::string out(sodium_base64_ENCODED_LEN(size, sodium_base64_VARIANT_ORIGINAL), '\0');
    sodium_bin2base64(out.data(), out.size(), bytes, size, sodium_base64_VARIANT_ORIGINAL);
    out.pop_back();  // the terminating NUL
    return out;
}

std::string_view status_text(int status) {
    switch (status) {
        case 403:
            return "Forbidden";
        case 404:
            return "Not Found";
        case 426:
            return "Upgrade Required";
        case 431:
            return "Request Header Fields Too Large";
        default:
            return "Bad Request";
    }
}

}  // namespace

std::string accept_value(std::string_view key) {
    std::string input(key);
    input += guid;
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    EVP_Digest(input.data(), input.size(), digest, &size, EVP_sha1(), nullptr);
    return base64(digest, size);
}

namespace {

constexpr std::string_view method = "GET ";

// The path of "GET <target> HTTP/1.1", or the refusal.
std::variant<std::string_view, RequestOutcome> request_path(std::string_view line,
                                                            const UpgradePolicy& policy) {
    line.remove_prefix(method.size());
    auto space = line.find(' ');
    if (space == std::string_view::npos || line.substr(space + 1) != "HTTP/1.1")
        return refuse(400, "the request line is not GET <path> HTTP/1.1");
    auto target = line.substr(0, space);
    auto path = target.substr(0, target.find('?'));
    if (path.empty() || path.front() != '/') return refuse(400, "the request target is not a path");
    if (path != policy.path) return refuse(404, "no WebSocket is served at this path");
    return path;
}

}  // namespace

RequestOutcome read_request(std::string_view bytes, const UpgradePolicy& policy,
                            RequestScan* scan) {
    RequestScan local;
    if (!scan) scan = &local;
    if (bytes.substr(0, method.size()) != method.substr(0, std::min(bytes.size(), method.size())))
        return refuse(400, "not a WebSocket upgrade (it must be a GET request)");
    // Only what is new since the last call is looked at: every line end of the head a CRLF
    // (what follows the head is WebSocket, not lines), the request line once whole.
    auto from = std::min(scan->scanned, bytes.size());
    auto end = bytes.find(end_of_head, from < 3 ? 0 : from - 3);
    auto head_end = end == std::string_view::npos ? bytes.size() : end + end_of_head.size();
    for (auto i = from; i < head_end; ++i)
        if (bytes[i] == '\n' && (i == 0 || bytes[i - 1] != '\r'))
            return refuse(400, "a line does not end with CRLF");
    if (!scan->request_line_checked) {
        // No CRLF came before `from`, or an earlier call would have checked the line.
        if (auto crlf = bytes.find("\r\n", from > 0 ? from - 1 : 0);
            crlf != std::string_view::npos) {
            auto path = request_path(bytes.substr(0, crlf), policy);
            if (auto* refused = std::get_if<RequestOutcome>(&path)) return std::move(*refused);
            scan->request_line_checked = true;
        }
    }
    scan->scanned = bytes.size();
    if (end == std::string_view::npos || end + end_of_head.size() > policy.max_request_bytes) {
        if (bytes.size() >= policy.max_request_bytes)
            return refuse(431, "the upgrade request is over " +
                                   std::to_string(policy.max_request_bytes) + " bytes");
        return {};
    }
    auto head = split_head(bytes, policy.max_headers);
    if (!head)
        return refuse(head.error().code == Errc::limit_exceeded ? 431 : 400, head.error().message);
    auto path_or_refusal = request_path(head->start_line, policy);
    if (auto* refused = std::get_if<RequestOutcome>(&path_or_refusal)) return std::move(*refused);
    auto path = std::get<std::string_view>(path_or_refusal);

    bool twice = false;
    auto host = head->one("Host", twice);
    auto key = head->one("Sec-WebSocket-Key", twice);
    auto version = head->one("Sec-WebSocket-Version", twice);
    auto origin = head->one("Origin", twice);
    if (twice) return refuse(400, "a header that must appear once appears twice");
    if (!host) return refuse(400, "no Host header");
    if (!has_token(head->all("Upgrade"), "websocket") ||
        !has_token(head->all("Connection"), "upgrade"))
        return refuse(400, "not a WebSocket upgrade (Upgrade: websocket, Connection: Upgrade)");
    if (!version || *version != "13") return refuse(426, "only WebSocket version 13 is spoken");
    if (!key || !valid_key(*key))
        return refuse(400, "Sec-WebSocket-Key is not the base64 of 16 bytes");
    if (!policy.allowed_origins.empty()) {
        bool allowed =
            origin && std::any_of(policy.allowed_origins.begin(), policy.allowed_origins.end(),
                                  [&](const std::string& o) { return iequals(o, *origin); });
        if (!allowed) return refuse(403, "this Origin is not allowed");
    }

    RequestOutcome out;
    out.state = RequestOutcome::State::accepted;
    out.size = head->size;
    out.upgrade.path = std::string(path);
    out.upgrade.host = std::string(*host);
    if (origin) out.upgrade.origin = std::string(*origin);
    out.upgrade.key = std::string(*key);
    out.upgrade.hawser_subprotocol = has_token(head->all("Sec-WebSocket-Protocol"), subprotocol);
    return out;
}

std::string accept_response(const Upgrade& upgrade) {
    std::string out =
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: " +
        accept_value(upgrade.key) + "\r\n";
    if (upgrade.hawser_subprotocol)
        (out += "Sec-WebSocket-Protocol: ") += std::string(subprotocol) + "\r\n";
    return out + "\r\n";
}

std::string refusal_response(int status, std::string_view reason) {
    std::string body = std::string(reason) + "\n";
    std::string out = "HTTP/1.1 " + std::to_string(status) + " " +
                      std::string(status_text(status)) +
                      "\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n"
                      "Content-Length: " +
                      std::to_string(body.size()) + "\r\n";
    if (status == 426) out += "Sec-WebSocket-Version: 13\r\n";
    return out + "\r\n" + body;
}

std::string new_key() {
    if (sodium_init() < 0) return {};
    unsigned char raw[16];
    randombytes_buf(raw, sizeof raw);
    return base64(raw, sizeof raw);
}

std::string request(std::string_view host, std::string_view path, std::string_view origin,
                    std::string_view key) {
    std::string out =
        "GET " + std::string(path) + " HTTP/1.1\r\nHost: " + std::string(host) +
        "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + std::string(key) +
        "\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: " + std::string(subprotocol) +
        "\r\n";
    if (!origin.empty()) out += "Origin: " + std::string(origin) + "\r\n";
    return out + "\r\n";
}

Result<std::optional<std::size_t>> read_response(std::string_view bytes, std::string_view key,
                                                 std::size_t max_bytes) {
    auto end = bytes.find(end_of_head);
    if (end == std::string_view::npos || end + end_of_head.size() > max_bytes) {
        if (bytes.size() >= max_bytes)
            return Error{Errc::bad_payload, "the WebSocket upgrade answer is over " +
                                                std::to_string(max_bytes) + " bytes"};
        return std::optional<std::size_t>{};
    }
    auto head = split_head(bytes, 64);
    if (!head)
        return Error{Errc::bad_payload,
                     "the WebSocket upgrade answer is not valid HTTP: " + head.error().message};
    auto status = head->start_line;
    if (status.substr(0, 13) != "HTTP/1.1 101 " && status != "HTTP/1.1 101") {
        // A refusal's body says why; show what of it has arrived, printable and short.
        std::string body;
        for (char c : bytes.substr(head->size, 200))
            if (c >= 0x20 && c < 0x7f) body += c;
        return Error{Errc::not_allowed,
                     "the server refused the WebSocket upgrade: " + std::string(status) +
                         (body.empty() ? "" : " (" + body + ")")};
    }
    bool twice = false;
    auto accept = head->one("Sec-WebSocket-Accept", twice);
    auto protocol = head->one("Sec-WebSocket-Protocol", twice);
    if (twice) return Error{Errc::bad_payload, "the WebSocket upgrade answer repeats a header"};
    if (!has_token(head->all("Upgrade"), "websocket") ||
        !has_token(head->all("Connection"), "upgrade"))
        return Error{Errc::bad_payload, "the 101 answer does not upgrade to websocket"};
    if (!accept || *accept != accept_value(key))
        return Error{Errc::bad_payload,
                     "the 101 answer's Sec-WebSocket-Accept does not match the key sent"};
    if (!head->all("Sec-WebSocket-Extensions").empty())
        return Error{Errc::bad_payload, "the server chose a WebSocket extension none offered"};
    if (protocol && *protocol != subprotocol)
        return Error{Errc::bad_payload, "the server chose a subprotocol none offered"};
    return std::optional<std::size_t>{head->size};
}

}  // namespace hawser::detail::http
