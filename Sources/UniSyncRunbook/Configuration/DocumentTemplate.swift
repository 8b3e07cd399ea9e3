import Foundation
import RunbookAWS
import RunbookEngine
import RunbookProcess
import RunbookState

/// A JSON document kept beside the configuration (a task definition) with `${NAME}` placeholders.
///
/// A step fills the placeholders it knows (`${SERVICE}`, `${IMAGE}`); every other one is a
/// reference to an export or a context value (`${RDS_ENDPOINT}`, `${REGION}`), filled at run time
/// and shown as `<RDS_ENDPOINT>` by `plan`. Placeholders stand inside JSON strings, or alone where
/// a number goes (`"containerPort": ${PORT}`).
package struct DocumentTemplate: Sendable, Hashable {
  /// The file, as the configuration names it.
  package var path: String
  package var text: String

  package init(path: String, text: String) {
    self.path = path
    self.text = text
  }

  static let placeholderPattern = #"\$\{([A-Za-z_][A-Za-z0-9_]*)\}"#

  /// Every placeholder name, in order of first use.
  package var placeholders: [String] {
    var seen = Set<String>()
    return extractedValues(Self.placeholderPattern, in: text).filter { seen.insert($0).inserted }
  }

  /// The document with `variables` filled in (their literal text JSON-escaped, as they stand in
  /// JSON strings) and every other placeholder left as an export reference.
  package func render(_ variables: [String: Argument]) -> Argument {
    guard let regex = try? NSRegularExpression(pattern: Self.placeholderPattern) else {
      return .text(text)
    }
    var fragments: [Fragment] = []
    var position = text.startIndex
    func append(_ fragment: Fragment) {
      if fragment != .text("") { fragments.appendMerging(fragment) }
    }
    for match in regex.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
      guard let whole = Range(match.range, in: text), let name = Range(match.range(at: 1), in: text)
      else { continue }
      append(.text(String(text[position..<whole.lowerBound])))
      if let value = variables[String(text[name])] {
        jsonEscaped(value).fragments.forEach(append)
      } else {
        append(.export(String(text[name])))
      }
      position = whole.upperBound
    }
    append(.text(String(text[position...])))
    return Argument(fragments)
  }

  /// Reads `path` (relative to `base`) and checks that it is a JSON object once every placeholder
  /// stands for a value. Returns the template, or the reason it cannot be used.
  package static func load(_ path: String, base: String) -> Result<
    DocumentTemplate, TemplateProblem
  > {
    let absolute = path.hasPrefix("/") ? path : base + "/" + path
    guard let data = FileManager.default.contents(atPath: absolute),
      let text = String(data: data, encoding: .utf8)
    else {
      return .failure(
        TemplateProblem(reason: "'\(absolute)' cannot be read (missing or not readable)"))
    }
    let template = DocumentTemplate(path: path, text: text)
    let probe = text.replacingOccurrences(
      of: placeholderPattern, with: "0", options: .regularExpression)
    guard let object = try? JSONSerialization.jsonObject(with: Data(probe.utf8)),
      object is [String: Any]
    else {
      return .failure(
        TemplateProblem(
          reason:
            "'\(absolute)' is not a JSON object (placeholders ${NAME} stand inside strings or for numbers)"
        ))
    }
    return .success(template)
  }
}

/// Why a template file cannot be used.
package struct TemplateProblem: Error {
  var reason: String
}
