// The HTTP edge's answers to Seneca callers and its reading of Seneca's answers (seneca_wire.h).
#include "seneca_wire.h"

#include "shardkit/message/codec.h"
#include "shardkit/message/json.h"
#include "wire.h"

namespace shardkit::services {
namespace {

std::string ErrorText(const Status& status, std::string_view meta) {
  std::string body = "{\"code\":";
  AppendJsonString(CodeName(status.code()), body);
  body += ",\"message\":";
  AppendJsonString(status.message(), body);
  if (!status.details_json().empty()) body += ",\"details\":" + status.details_json();
  body += ",\"statusCode\":" + std::to_string(HttpStatusFor(status));
  if (!meta.empty()) body += ",\"meta$\":" + std::string(meta);
  return body + '}';
}

// The reply's value for Seneca: seneca$ when the reply carries it, else the reply object.
std::string ValueText(const Message& reply) {
  const Value* v = reply.Find("seneca$");
  if (v == nullptr) {
    Message copy = reply;
    copy.meta() = Meta{};
    return ToJson(copy);
  }
  return std::string(v->type == ValueType::kNull ? "null" : v->text);
}

}  // namespace

std::optional<std::string> FromSenecaWeb(std::string_view body, std::string& id) {
  if (body.find("\"meta$\"") == std::string_view::npos) return std::nullopt;
  auto doc = ParseJson(body, "body");
  if (!doc.ok() || !doc->IsObject()) return std::nullopt;
  auto meta = doc->FindMember("meta$");
  if (meta == doc->MemberEnd() || !meta->value.IsObject() || !meta->value.HasMember("seneca") ||
      !meta->value.HasMember("instance"))
    return std::nullopt;
  if (auto it = meta->value.FindMember("id"); it != meta->value.MemberEnd() && it->value.IsString())
    id = it->value.GetString();
  doc->EraseMember(meta);
  return ToJsonText(*doc);
}

SenecaResponse ToSeneca(SenecaCaller caller, const Result<Message>& result, const std::string& id) {
  std::string meta;
  if (caller == SenecaCaller::kWeb) meta = JsonObject().Add("id", id).str();
  if (!result.ok()) {
    if (caller == SenecaCaller::kWeb) {
      meta = JsonObject().Add("id", id).AddBool("error", true).str();
      return {500, ErrorText(result.status(), meta)};
    }
    return {kSenecaTransportErrorStatus, ErrorText(result.status(), "")};
  }
  std::string value = ValueText(*result);
  if (caller == SenecaCaller::kTransport) return {200, std::move(value)};
  if (value == "null")
    return {200,
            JsonObject().Add("meta$", JsonObject().Add("id", id).AddBool("empty", true)).str()};
  if (value.front() == '[') return {200, "{\"array$\":" + value + ",\"meta$\":" + meta + "}"};
  if (value == "{}") return {200, "{\"meta$\":" + meta + "}"};
  value.pop_back();
  return {200, value + ",\"meta$\":" + meta + "}"};
}

std::optional<Result<Message>> FromSenecaReply(unsigned status, std::string_view body) {
  auto doc = ParseJson(body, "body");
  if (!doc.ok()) return std::nullopt;
  if (status >= 200 && status < 300 && (doc->IsNull() || doc->IsArray())) {
    Message reply;
    if (doc->IsNull())
      reply.SetNull("seneca$");
    else
      reply.SetArrayJson("seneca$", body);
    return Result<Message>(std::move(reply));
  }
  if (status < 400 || !doc->IsObject()) return std::nullopt;
  auto code = doc->FindMember("code");
  auto message = doc->FindMember("message");
  if (code == doc->MemberEnd() || !code->value.IsString() || message == doc->MemberEnd() ||
      !message->value.IsString())
    return std::nullopt;
  std::string name = code->value.GetString();
  if (auto known = CodeFromName(name); known && *known != Code::kOk) {
    auto details = doc->FindMember("details");
    std::string text = details != doc->MemberEnd() && details->value.IsObject()
                           ? ToJsonText(details->value)
                           : std::string();
    return Result<Message>(Status(*known, message->value.GetString(), std::move(text)));
  }
  return Result<Message>(
      Status(Code::kInternal, message->value.GetString(), JsonObject().Add("code", name).str()));
}

}  // namespace shardkit::services
