// The demo commands (demo_commands.hpp). Each runs on the calling connection's IO thread.
#include "demo_commands.hpp"

#include <spdlog/spdlog.h>

#include <cstdint>
#include <string>

#include "hawser/connection.hpp"

namespace hawser::app {

namespace {

// "<first> <rest>": the word before the first space and everything after it.
bool split_word(std::string_view text, std::string_view& first, std::string_view& rest) {
    auto space = text.find(' ');
    if (space == 0 || space == std::string_view::npos) return false;
    first = text.substr(0, space);
    rest = text.substr(space + 1);
    return true;
}

}  // namespace

void register_demo_commands(Commands& commands, DemoChannels channels) {
    commands.console("hello", [](const Request&, std::string_view name) {
        return "hello, " + std::string(name);
    });
    commands.console("echo",
                     [](const Request&, std::string_view text) { return std::string(text); });
    commands.dataframe("echo.frame", [](const Request&, DataFrame& in) { return in; });
    // Sums every integer in the frame: a typed-error demo too (a string in it fails the call).
    commands.dataframe("sum", [](const Request&, DataFrame& in) {
        std::int64_t total = 0;
        while (!in.at_end()) total += in.get<std::int64_t>();
        DataFrame out;
        out << total;
        return out;
    });
    commands.direct_console("log", [](const Request& req, std::string_view text) {
        spdlog::info("log from {}: {}", req.connection().remote_address(), text);
    });
    // Server push: the text comes back as the one-way command "pushed", before this reply.
    commands.console("push", [](const Request& req, std::string_view text) {
        if (auto sent = req.connection().send("pushed", std::string(text)); !sent)
            throw Exception(sent.error());
        return std::string("pushed");
    });
    // "<command> <text>": the server calls the client's console command and answers with the
    // client's reply (or its error).
    commands.console(
        "call.back", [](const Request& req, std::string text, Responder<std::string> reply) {
            std::string_view command, argument;
            if (!split_word(text, command, argument)) {
                reply.fail(Errc::invalid_argument, "call.back takes \"<command> <text>\"");
                return;
            }
            req.connection().call(command, std::string(argument), [reply](Result<std::string> r) {
                if (r)
                    reply.reply(std::move(*r));
                else
                    reply.fail(r.error().code, r.error().message);
            });
        });
    // The same with DataFrames: [command, values...] calls the client's DataFrame command with
    // the values and answers with its reply.
    commands.dataframe(
        "call.back.frame", [](const Request& req, DataFrame in, Responder<DataFrame> reply) {
            auto command = in.read_string();
            if (!command) return reply.fail(Errc::invalid_argument, "[command, values...]");
            DataFrame rest;
            while (!in.at_end()) {
                auto value = in.read_value();
                if (!value) return reply.fail(value.error().code, value.error().message);
                rest << *value;
            }
            req.connection().call(*command, std::move(rest), [reply](Result<DataFrame> r) {
                if (r)
                    reply.reply(std::move(*r));
                else
                    reply.fail(r.error().code, r.error().message);
            });
        });
    if (!channels.publish) return;
    // "<channel> <text>": the line "<channel> <text>" goes to every subscriber of the channel, on
    // every node, as the one-way command "chat.message".
    commands.console(
        "chat.say", [channels](const Request&, std::string text, Responder<std::string> reply) {
            std::string_view channel, line;
            if (!split_word(text, channel, line))
                return reply.fail(Errc::invalid_argument, "chat.say takes \"<channel> <text>\"");
            if (!channels.may_publish(channel))
                return reply.fail(Errc::not_allowed, "clients may not speak on this channel");
            if (auto sent = channels.publish(channel, text); !sent)
                return reply.fail(sent.error().code, sent.error().message);
            reply.reply("said");
        });
}

}  // namespace hawser::app
