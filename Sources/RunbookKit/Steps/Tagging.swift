import Foundation

/// Tags that prove a resource was made by this tool for this deployment.
public enum OwnershipTag {
  public static let deployment = "runbook:deployment"
  public static let lineage = "runbook:lineage"
  public static let action = "runbook:action"
}

extension Deployment {
  /// The tags every created resource carries: its `Name`, the deployment, the lineage and the action.
  /// Rendered as JSON objects (`{"Key":…,"Value":…}`) so no value is ever parsed as shorthand syntax.
  func tagList(name: String, action: String) -> Argument {
    Argument(
      [.text("[" + jsonTag("Name", name) + "," + jsonTag(OwnershipTag.deployment, self.name) + ",")]
        + lineageTag()
        + [.text("," + jsonTag(OwnershipTag.action, action) + "]")])
  }

  /// `--tag-specifications` for EC2: the resource type plus ``tagList(name:action:)``.
  func tagSpecifications(_ resourceType: String, name: String, action: String) -> Argument {
    Argument(
      [.text("[{\"ResourceType\":" + jsonString(resourceType) + ",\"Tags\":")]
        + tagList(name: name, action: action).fragments + [.text("}]")])
  }

  private func lineageTag() -> [Fragment] {
    [.text("{\"Key\":" + jsonString(OwnershipTag.lineage) + ",\"Value\":\""), .export(ContextValue.lineage), .text("\"}")]
  }

  /// EC2 `--filters` (JSON) matching resources this deployment's action created, plus extra filters.
  func ownedFilters(action: String, _ extra: [(String, [String])] = []) -> Argument {
    ec2Filters(
      [("tag:\(OwnershipTag.deployment)", [name]), ("tag:\(OwnershipTag.action)", [action])] + extra)
  }
}

/// EC2 `--filters` as JSON.
func ec2Filters(_ filters: [(String, [String])]) -> Argument {
  let items = filters.map { name, values in
    "{\"Name\":\(jsonString(name)),\"Values\":[\(values.map(jsonString).joined(separator: ","))]}"
  }
  return .text("[" + items.joined(separator: ",") + "]")
}

private func jsonTag(_ key: String, _ value: String) -> String {
  "{\"Key\":\(jsonString(key)),\"Value\":\(jsonString(value))}"
}

/// A JSON string literal for `text`.
func jsonString(_ text: String) -> String {
  let data = try? JSONSerialization.data(withJSONObject: [text], options: [.withoutEscapingSlashes])
  let array = data.map { String(decoding: $0, as: UTF8.self) } ?? "[\"\"]"
  return String(array.dropFirst().dropLast())
}
