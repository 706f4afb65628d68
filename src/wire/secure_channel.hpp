// The secure wire under the message layer (docs/protocol.md, "Handshake" and "Transport").
// ClientHandshake / ServerHandshake turn frame bodies into a SecureTransport (or a plaintext
// agreement); SecureTransport (secure_transport.hpp) carries the messages after it.
// Framing and commands never see any of it. Pure code; one per connection, on its IO thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "hawser/error.hpp"
#include "hawser/options.hpp"
#include "wire/noise.hpp"
#include "wire/secure_transport.hpp"

namespace hawser::detail {

inline constexpr std::uint8_t wire_version = 2;

namespace testing {
// Tests only: every new transport starts its nonces here, both directions (0, the spec's start,
// in production), so a test reaches nonce exhaustion in a few messages.
inline std::atomic<std::uint64_t> first_nonce{0};
}  // namespace testing

enum class HelloMode : std::uint8_t { plaintext = 0, nk = 1, xx = 2 };

// Binds the handshake to this protocol, its version and the deployment's marks.
std::vector<std::uint8_t> prologue(noise::Pattern pattern, const ProtocolMark& mark);

// What a handshake step produced: a frame body to send (maybe empty) and whether it is done.
struct HandshakeStep {
    std::vector<std::uint8_t> reply;
    bool done = false;
};

class ClientHandshake {
  public:
    struct Config {
        ProtocolMark mark;
        bool plaintext = false;
        // The server's pinned key. Checked by NK, or by comparing what XX received.
        std::optional<noise::Key> server_key;
        // The client's own static key: XX proves it to the server. Without it: NK when the
        // server's key is pinned, otherwise XX with a key for this connection only (trust on
        // first use).
        std::optional<noise::KeyPair> static_keys;
    };
    explicit ClientHandshake(Config config);
    std::vector<std::uint8_t> hello();  // the first frame body
    Result<HandshakeStep> on_frame(std::span<const std::uint8_t> body);
    // After done: null in plaintext mode.
    std::unique_ptr<SecureTransport> transport(SecureTransport::Clock::time_point now);
    std::optional<noise::Key> server_key() const;

  private:
    Config config_;
    std::optional<noise::HandshakeState> hs_;
};

// Which clients a server accepts by their static key (docs/security.md, "Client keys").
struct ClientKeyPolicy {
    bool required = false;            // clients without a static key (NK) are refused
    std::vector<noise::Key> allowed;  // when not empty, only these keys (and a key is required)
    bool admits(const std::optional<noise::Key>& client_key) const;
};

class ServerHandshake {
  public:
    ServerHandshake(ProtocolMark mark, bool plaintext, const noise::KeyPair& static_keys)
        : mark_(mark), plaintext_(plaintext), static_keys_(static_keys) {}
    Result<HandshakeStep> on_frame(std::span<const std::uint8_t> body);
    std::unique_ptr<SecureTransport> transport(SecureTransport::Clock::time_point now);
    // After done: the static key the client proved it holds (XX); nullopt for NK and plaintext.
    std::optional<noise::Key> client_key() const;

  private:
    ProtocolMark mark_;
    bool plaintext_;
    const noise::KeyPair& static_keys_;
    std::optional<noise::HandshakeState> hs_;
};

}  // namespace hawser::detail
