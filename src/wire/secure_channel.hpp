// The secure wire under the message layer (docs/protocol.md, "Handshake" and "Transport").
// ClientHandshake / ServerHandshake turn frame bodies into a SecureTransport (or a plaintext
// agreement); SecureTransport seals messages into frames and opens frames into messages.
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

namespace hawser::detail {

inline constexpr std::uint8_t wire_version = 1;

namespace testing {
// Tests only: every new transport starts its nonces here, both directions (0, the spec's start,
// in production), so a test reaches nonce exhaustion in a few messages.
inline std::atomic<std::uint64_t> first_nonce{0};
}  // namespace testing

enum class HelloMode : std::uint8_t { plaintext = 0, nk = 1, xx = 2 };

// Binds the handshake to this protocol, its version and the deployment's marks.
std::vector<std::uint8_t> prologue(noise::Pattern pattern, const ProtocolMark& mark);

class SecureTransport {
  public:
    using Clock = std::chrono::steady_clock;
    // Data per chunk: a Noise message is at most 65535 bytes with the tag and a type byte.
    static constexpr std::size_t max_chunk = noise::max_message - noise::tag_len - 1;
    enum class Opened { need_more, message, bad_mac, too_large, malformed };

    SecureTransport(noise::CipherState send, noise::CipherState recv, Clock::time_point now)
        : send_(send), recv_(recv), last_rekey_(now) {}

    // Appends the frames that carry `message` to out, rekeying first when the policy says so.
    // False when encryption failed (the nonce space is spent): out is left as it was and the
    // connection must close, for nothing more can be sealed.
    bool seal(std::span<const std::uint8_t> message, std::vector<std::uint8_t>& out,
              const ProtocolMark& mark, const TransportOptions& policy, Clock::time_point now);
    // Decrypts one frame body. On Opened::message, `message` holds the whole plaintext, valid
    // until the next call (it lives in `scratch` or in the reassembly buffer).
    Opened open(std::span<const std::uint8_t> body, std::size_t max_message,
                std::vector<std::uint8_t>& scratch, std::span<const std::uint8_t>& message);

    std::uint64_t rekeys() const noexcept { return rekeys_; }
    // Tests only: pretend n more messages went out since the last rekey.
    void count_sent_for_test(std::uint64_t n) noexcept { sent_since_rekey_ += n; }

  private:
    bool seal_chunk(std::uint8_t type, std::span<const std::uint8_t> data,
                    std::vector<std::uint8_t>& out, const ProtocolMark& mark);

    noise::CipherState send_, recv_;
    std::vector<std::uint8_t> partial_;  // chunks of an unfinished message; empty when idle
    Clock::time_point last_rekey_;
    // As wide as TransportOptions::rekey_messages: a narrower counter wraps before reaching it.
    std::uint64_t sent_since_rekey_ = 0;
    std::uint64_t rekeys_ = 0;
};

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
