// Whole plaintext messages (header + payload), ready to be framed or sealed.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "hawser/options.hpp"
#include "wire/message.hpp"

namespace hawser::detail {

// A message as its header and the bytes after it, for a sender that copies them once, into
// the piece they are sealed in: the payload is the caller's own bytes (not copied; they must
// outlive the parts) or, compressed, held here. Made in place; not copyable.
class MessageParts {
  public:
    MessageParts() = default;
    MessageParts(const MessageParts&) = delete;
    MessageParts& operator=(const MessageParts&) = delete;

    std::span<const std::uint8_t> head() const noexcept { return {head_, head_size_}; }
    std::span<const std::uint8_t> body() const noexcept { return body_; }
    std::size_t size() const noexcept { return head_size_ + body_.size(); }

  private:
    friend void encode_message(MessageParts&, Kind, std::uint64_t, std::string_view,
                               std::span<const std::uint8_t>, const TransportOptions&, bool);
    friend void encode_coded(MessageParts&, Kind, std::uint64_t, std::uint16_t, std::string_view);
    std::uint8_t head_[max_message_header + 2];  // a header, and an error's code after it
    std::size_t head_size_ = 0;
    std::span<const std::uint8_t> body_;
    std::optional<std::string> packed_;  // the compressed payload
};

// The message into `out`; calls, directs and replies over the policy's threshold are
// compressed when that makes them smaller, unless `compress` is false (the message may mix
// attacker-chosen text with secrets: docs/security.md).
void encode_message(MessageParts& out, Kind kind, std::uint64_t id, std::string_view name,
                    std::span<const std::uint8_t> payload, const TransportOptions& policy,
                    bool compress = true);
// The same, whole in one buffer (a broadcast, sealed for many connections), replacing `out`.
void encode_message(std::vector<std::uint8_t>& out, Kind kind, std::uint64_t id,
                    std::string_view name, std::span<const std::uint8_t> payload,
                    const TransportOptions& policy, bool compress = true);

// Error replies and goodbyes: code (2) | text (at most 1 KiB of it; `text` must outlive `out`).
void encode_coded(MessageParts& out, Kind kind, std::uint64_t id, std::uint16_t code,
                  std::string_view text);
void encode_coded(std::vector<std::uint8_t>& out, Kind kind, std::uint64_t id, std::uint16_t code,
                  std::string_view text);

}  // namespace hawser::detail
