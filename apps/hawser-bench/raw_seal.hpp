// The raw baseline's sealed variant (`--raw-sealed`): what a hand-written server that wants
// per-connection keys would do with no framework and no Noise. It costs what Hawser's
// handshake costs in key exchange, three X25519 operations a side as Noise NK does, and seals
// each write with the ChaCha20-Poly1305 the secure wire uses, so that a ratio against it shows
// the framework's cost, not the cryptography's.
//
//   client -> server  hello frame (raw_wire.hpp): its ephemeral public key, 32 bytes
//   server -> client  hello frame: its ephemeral public key
//   both              keys = BLAKE2b-512(ee || es || client e || server e): the first half seals
//                     what the client sends, the second what the server sends
//   then              records: a 4-byte little-endian length, then frames sealed as one
//                     message (a tag of 16 bytes; the nonce counts the records of a direction)
//
// The server's static key comes from a seed both ends know: a baseline measures cost, not
// secrecy. One object per connection, on the thread that owns the connection.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace hawser::bench::raw {

class Sealer {
  public:
    static constexpr std::size_t hello_bytes = 32;
    static constexpr std::size_t max_record = 64 << 10;  // plaintext bytes per record

    // The client's side before the server has answered: makes its ephemeral key.
    static Sealer client();
    // The server's side from the client's hello, or nothing if it is not a key; hello() is
    // then the answer.
    static std::optional<Sealer> server(std::string_view client_hello);

    std::string_view hello() const;
    // The client's side: the server's hello gives the keys; false if it is not a key.
    bool finish(std::string_view server_hello);

    // Appends `plain` sealed as records to `out`.
    void seal(std::string_view plain, std::string& out);
    // Opens the whole records at the front of `in` into `plain`; the bytes used, or -1 if a
    // record is too long or not authentic.
    long open(std::string_view in, std::string& plain);

    // The hello frame at the front of `in`: the key it carries, empty while it is not whole,
    // nothing if `in` begins with anything else.
    static std::optional<std::string_view> hello_at(std::string_view in);
    static constexpr std::size_t hello_frame_bytes = 5 + hello_bytes;
    // Appends this side's hello frame.
    void append_hello(std::string& out) const;

  private:
    Sealer() = default;
    void derive(const std::uint8_t* ee, const std::uint8_t* es, const std::uint8_t* client_e,
                const std::uint8_t* server_e, bool is_client);

    std::array<std::uint8_t, 32> secret_{}, public_{};  // this side's ephemeral key
    std::array<std::uint8_t, 32> send_key_{}, receive_key_{};
    std::uint64_t sent_ = 0, received_ = 0;
};

}  // namespace hawser::bench::raw
