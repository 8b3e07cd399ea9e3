import Foundation
import RunbookProcess

// JSON written into arguments (tags, filters, policies, task definitions), and JSON compared with
// what AWS answers.

/// A JSON string literal for `text`.
func jsonString(_ text: String) -> String {
  let data = try? JSONSerialization.data(withJSONObject: [text], options: [.withoutEscapingSlashes])
  let array = data.map { String(decoding: $0, as: UTF8.self) } ?? "[\"\"]"
  return String(array.dropFirst().dropLast())
}

/// A JSON array of strings.
func jsonArray(_ items: [String]) -> String {
  "[" + items.map(jsonString).joined(separator: ",") + "]"
}

/// A JSON array of strings that may reference exports.
func jsonArray(_ items: [Argument]) -> Argument {
  var parts: [Argument] = ["["]
  for (index, item) in items.enumerated() {
    if index > 0 { parts.append(",") }
    parts.append(jsonQuoted(item))
  }
  parts.append("]")
  return joined(parts)
}

/// A JSON string literal of an argument: its literal text escaped, export values (ids, ARNs,
/// host names) left as they are.
func jsonQuoted(_ argument: Argument) -> Argument {
  joined([.text("\""), jsonEscaped(argument), .text("\"")])
}

/// An argument as it stands inside a JSON string: its literal text escaped, export values left as
/// they are (they are ids, ARNs and host names, which need no escaping).
func jsonEscaped(_ argument: Argument) -> Argument {
  Argument(
    argument.fragments.map {
      if case .text(let text) = $0 {
        .text(String(jsonString(text).dropFirst().dropLast()))
      } else {
        $0
      }
    })
}

/// Whether `actual` has everything `wanted` has: the same values for its keys (more keys are
/// fine), arrays of the same length whose elements match in any order. AWS adds defaults to what
/// it is given, and leaves out empty lists: a missing key matches an empty object or list.
func jsonContains(_ actual: JSONValue?, _ wanted: JSONValue) -> Bool {
  switch wanted {
  case .object(let wanted):
    guard case .object(let actual) = actual else { return actual == nil && wanted.isEmpty }
    return wanted.allSatisfy { key, value in jsonContains(actual[key], value) }
  case .array(let wanted):
    guard case .array(let actual) = actual else { return actual == nil && wanted.isEmpty }
    guard actual.count == wanted.count else { return false }
    var unused = actual
    for item in wanted {
      guard let index = unused.firstIndex(where: { jsonContains($0, item) }) else { return false }
      unused.remove(at: index)
    }
    return true
  case .null:
    return actual == nil || actual == .null
  case .bool, .number, .string:
    return actual == wanted
  }
}
