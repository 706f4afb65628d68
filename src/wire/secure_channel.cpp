#include "wire/secure_channel.hpp"

#include <algorithm>
#include <cstring>
#include <string>

#include "wire/frame.hpp"

namespace hawser::detail {

namespace {
Error failed(std::string why) {
    return Error{Errc::invalid_argument, std::move(why)};
}

// Reads the peer's handshake message and, unless that finished the handshake, writes ours.
// With `pinned`, the peer's static key must be that one before anything more is sent: an XX
// client reveals its own static key only to the server it pinned.
Result<HandshakeStep> advance(noise::HandshakeState& hs, std::span<const std::uint8_t> body,
                              const char* peer, const std::optional<noise::Key>& pinned = {}) {
    if (hs.finished() || hs.my_turn()) return failed("unexpected handshake message");
    auto payload = hs.read_message(body);
    if (!payload)
        return failed(std::string(peer) + " handshake rejected: " + payload.error().message);
    if (pinned && hs.remote_static() != pinned)
        return failed(std::string(peer) + " static key is not the pinned key");
    HandshakeStep step;
    if (!hs.finished()) {
        if (auto w = hs.write_message({}, step.reply); !w) return w.error();
    }
    step.done = hs.finished();
    return step;
}

std::unique_ptr<SecureTransport> transport_of(const std::optional<noise::HandshakeState>& hs,
                                              SecureTransport::Clock::time_point now) {
    if (!hs) return nullptr;  // plaintext mode
    auto [send, recv] = hs->split();
    if (auto n = testing::first_nonce.load(std::memory_order_relaxed)) {
        send.set_nonce(n);
        recv.set_nonce(n);
    }
    return std::make_unique<SecureTransport>(send, recv, now);
}
}  // namespace

std::vector<std::uint8_t> prologue(noise::Pattern pattern, const ProtocolMark& mark) {
    std::string p =
        "Hawser/" + std::to_string(wire_version) + " " + noise::protocol_name(pattern) + " ";
    std::vector<std::uint8_t> out(p.begin(), p.end());
    out.insert(out.end(), mark.head.begin(), mark.head.end());
    out.insert(out.end(), mark.tail.begin(), mark.tail.end());
    return out;
}

// --- client ---

ClientHandshake::ClientHandshake(Config config) : config_(std::move(config)) {}

std::vector<std::uint8_t> ClientHandshake::hello() {
    if (config_.plaintext) return {wire_version, std::uint8_t(HelloMode::plaintext)};
    noise::HandshakeState::Config c;
    c.initiator = true;
    if (config_.static_keys) {
        c.pattern = noise::Pattern::xx;  // sends our static key; the pin is checked on reading
        c.static_keys = config_.static_keys;
    } else if (config_.server_key) {
        c.pattern = noise::Pattern::nk;
        c.remote_static = config_.server_key;
    } else {
        c.pattern = noise::Pattern::xx;
        c.static_keys = noise::KeyPair::generate();  // an identity for this connection only
    }
    c.prologue = prologue(c.pattern, config_.mark);
    auto mode = c.pattern == noise::Pattern::nk ? HelloMode::nk : HelloMode::xx;
    hs_.emplace(std::move(c));
    std::vector<std::uint8_t> out{wire_version, std::uint8_t(mode)};
    (void)hs_->write_message({}, out);  // the first message cannot fail
    return out;
}

Result<HandshakeStep> ClientHandshake::on_frame(std::span<const std::uint8_t> body) {
    if (config_.plaintext) {
        if (body.size() == 2 && body[0] == wire_version &&
            body[1] == std::uint8_t(HelloMode::plaintext))
            return HandshakeStep{{}, true};
        return failed("the server did not agree to plaintext");
    }
    if (!hs_) return failed("unexpected handshake message");
    return advance(*hs_, body, "server", config_.server_key);  // XX answers with -> s, se
}

std::unique_ptr<SecureTransport> ClientHandshake::transport(
    SecureTransport::Clock::time_point now) {
    return transport_of(hs_, now);
}

std::optional<noise::Key> ClientHandshake::server_key() const {
    return hs_ ? hs_->remote_static() : std::nullopt;
}

// --- server ---

Result<HandshakeStep> ServerHandshake::on_frame(std::span<const std::uint8_t> body) {
    if (!hs_) {  // the hello
        if (body.size() < 2) return failed("short hello");
        if (body[0] != wire_version)
            return failed("unsupported protocol version " + std::to_string(body[0]));
        auto mode = HelloMode(body[1]);
        if (mode == HelloMode::plaintext) {
            if (!plaintext_) return failed("this server requires encryption");
            return HandshakeStep{{wire_version, std::uint8_t(HelloMode::plaintext)}, true};
        }
        if (plaintext_) return failed("this server runs in plaintext mode");
        if (mode != HelloMode::nk && mode != HelloMode::xx)
            return failed("unknown handshake pattern");
        noise::HandshakeState::Config c;
        c.pattern = mode == HelloMode::nk ? noise::Pattern::nk : noise::Pattern::xx;
        c.initiator = false;
        c.static_keys = static_keys_;
        c.prologue = prologue(c.pattern, mark_);
        hs_.emplace(std::move(c));
        body = body.subspan(2);
    }
    return advance(*hs_, body, "client");
}

std::unique_ptr<SecureTransport> ServerHandshake::transport(
    SecureTransport::Clock::time_point now) {
    return transport_of(hs_, now);
}

std::optional<noise::Key> ServerHandshake::client_key() const {
    return hs_ && hs_->finished() ? hs_->remote_static() : std::nullopt;
}

bool ClientKeyPolicy::admits(const std::optional<noise::Key>& client_key) const {
    if (!client_key) return !required && allowed.empty();
    return allowed.empty() ||
           std::find(allowed.begin(), allowed.end(), *client_key) != allowed.end();
}

}  // namespace hawser::detail
