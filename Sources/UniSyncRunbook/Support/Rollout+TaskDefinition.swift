import RunbookEngine

/// The task definition a rollout registers: the described one, ready to register again, with the
/// image of the service's container replaced. It stays a JSON document (``JSONValue``) so that
/// every field the tool does not know goes through unchanged.
extension Rollout {
  /// The task definition fields AWS adds, which `register-task-definition` does not take.
  static let readOnlyFields = [
    "taskDefinitionArn", "revision", "status", "requiresAttributes", "compatibilities",
    "registeredAt", "registeredBy", "deregisteredAt",
  ]

  /// A described task definition without the fields AWS adds.
  static func registrable(_ definition: [String: JSONValue]) -> [String: JSONValue] {
    definition.filter { !readOnlyFields.contains($0.key) }
  }

  /// The described task definition, ready to register, with the image of `container` (or of the
  /// only container) replaced; nothing else changes.
  static func derive(_ definition: [String: JSONValue], container: String, image: String) throws
    -> [String: JSONValue]
  {
    var copy = registrable(definition)
    var containers = copy["containerDefinitions"]?.arrayValue ?? []
    let index =
      containers.firstIndex { $0["name"]?.stringValue == container }
      ?? (containers.count == 1 ? 0 : nil)
    guard let index, case .object(var chosen) = containers[index] else {
      throw ProcedureFailure(
        "the task definition has no container named \(container) (containers: \(containers.compactMap { $0["name"]?.stringValue }.joined(separator: ", ")))"
      )
    }
    chosen["image"] = .string(image)
    containers[index] = .object(chosen)
    copy["containerDefinitions"] = .array(containers)
    return copy
  }

  /// `path: old -> new` for every field that differs between two task definitions.
  static func differences(_ old: [String: JSONValue], _ new: [String: JSONValue]) -> [String] {
    differences(.object(old), .object(new))
  }

  /// `path: old -> new` for every field that differs (list items with a `name` are matched by it).
  static func differences(_ old: JSONValue?, _ new: JSONValue?, path: String = "") -> [String] {
    switch (old, new) {
    case (.object(let a)?, .object(let b)?):
      return Set(a.keys).union(b.keys).sorted().flatMap {
        differences(a[$0], b[$0], path: path.isEmpty ? $0 : "\(path).\($0)")
      }
    case (.array(let a)?, .array(let b)?):
      func key(_ item: JSONValue) -> String? { item["name"]?.stringValue }
      if (a + b).allSatisfy({ key($0) != nil }) {
        let names = (a.compactMap(key) + b.compactMap(key)).reduce(into: [String]()) {
          if !$0.contains($1) { $0.append($1) }
        }
        return names.flatMap { name in
          differences(
            a.first { key($0) == name }, b.first { key($0) == name }, path: "\(path)[\(name)]")
        }
      }
      if a.count != b.count { return ["\(path): \(render(old)) -> \(render(new))"] }
      return zip(a, b).enumerated().flatMap { differences($1.0, $1.1, path: "\(path)[\($0)]") }
    default:
      return render(old) == render(new) ? [] : ["\(path): \(render(old)) -> \(render(new))"]
    }
  }

  /// A field's value as the differences show it: text as it is, anything else as JSON.
  static func render(_ value: JSONValue?) -> String {
    switch value {
    case nil, .null?: "(none)"
    case .string(let text)?: text
    case let value?: value.jsonText
    }
  }
}
