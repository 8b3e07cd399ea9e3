import Foundation
import RunbookAWS
import RunbookEngine
import RunbookProcess
import RunbookState

/// Tags that prove a resource was made by this tool for this deployment.
package enum OwnershipTag {
  package static let deployment = "runbook:deployment"
  package static let lineage = "runbook:lineage"
  package static let action = "runbook:action"
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
    [
      .text("{\"Key\":" + jsonString(OwnershipTag.lineage) + ",\"Value\":\""),
      .export(ContextValue.lineage), .text("\"}"),
    ]
  }

  /// EC2 `--filters` (JSON) matching resources this deployment's action created, plus extra filters
  /// (`exports`: filters whose single value is an export, such as `("vpc-id", "VPC_ID")`).
  func ownedFilters(
    action: String, _ extra: [(String, [String])] = [], exports: [(String, String)] = []
  ) -> Argument {
    ec2Filters(
      [("tag:\(OwnershipTag.deployment)", [name]), ("tag:\(OwnershipTag.action)", [action])]
        + extra,
      exports: exports)
  }

  /// SQS `--tags` (a JSON map): the same tags as ``tagList(name:action:)``.
  func tagMap(name: String, action: String) -> Argument {
    let deployment = jsonString(OwnershipTag.deployment) + ":" + jsonString(self.name)
    let action = jsonString(OwnershipTag.action) + ":" + jsonString(action)
    return
      "{\"Name\":\(jsonString(name)),\(deployment),\(jsonString(OwnershipTag.lineage)):\"\(ref: ContextValue.lineage)\",\(action)}"
  }
}

/// EC2 `--filters` as JSON. `exports` adds filters whose single value is an export's value
/// (`("vpc-id", "VPC_ID")`, `("group-id", "ALB_SG")`), known only at run time.
func ec2Filters(_ filters: [(String, [String])], exports: [(String, String)] = []) -> Argument {
  let literal = filters.map { name, values in
    "{\"Name\":\(jsonString(name)),\"Values\":[\(values.map(jsonString).joined(separator: ","))]}"
  }
  var text = Argument.Interpolation(literalCapacity: 0, interpolationCount: exports.count)
  text.appendLiteral("[" + literal.joined(separator: ","))
  for (index, (name, export)) in exports.enumerated() {
    text.appendLiteral(
      (literal.isEmpty && index == 0 ? "" : ",") + "{\"Name\":\(jsonString(name)),\"Values\":[\"")
    text.appendInterpolation(ref: export)
    text.appendLiteral("\"]}")
  }
  text.appendLiteral("]")
  return Argument(stringInterpolation: text)
}

private func jsonTag(_ key: String, _ value: String) -> String {
  "{\"Key\":\(jsonString(key)),\"Value\":\(jsonString(value))}"
}

extension Deployment {
  /// ECS `--tags`: the same tags as ``tagList(name:action:)`` with ECS's lower-case `key`/`value`.
  func ecsTagList(name: String, action: String) -> Argument {
    func tag(_ key: String, _ value: String) -> String {
      "{\"key\":\(jsonString(key)),\"value\":\(jsonString(value))}"
    }
    return
      "[\(tag("Name", name)),\(tag(OwnershipTag.deployment, self.name)),{\"key\":\(jsonString(OwnershipTag.lineage)),\"value\":\"\(ref: ContextValue.lineage)\"},\(tag(OwnershipTag.action, action))]"
  }
}

/// `api-gateway` → `API_GATEWAY`: the suffix of per-service exports (`REPO_URI_API_GATEWAY`).
func exportSuffix(_ name: String) -> String {
  name.uppercased().replacingOccurrences(of: "-", with: "_").replacingOccurrences(
    of: ".", with: "_")
}

extension Precheck {
  /// A precheck that finds an existing resource by name: the first word of the output matching
  /// `pattern` (an ARN) is the result, so the create is skipped.
  static func exists(
    _ command: Command, rule: String, pattern: String, ownership: Precheck.Ownership? = nil
  ) -> Precheck {
    var precheck = Precheck(command, rule: rule) { output, _ in
      output.split(whereSeparator: { $0 == "\t" || $0 == "\n" || $0 == " " }).map(String.init)
        .first { Capture(export: nil, pattern: pattern).accepts($0) }
    }
    precheck.ownership = ownership
    return precheck
  }
}

extension Precheck {
  /// For a delete: reads the resource's `runbook:deployment` tag (`output` is its value) and keeps
  /// the resource when the tag names another deployment or none. A resource that is gone (the
  /// read fails) is left to the delete, which reports it as done.
  static func notTagged(_ command: Command, deployment: String) -> Precheck {
    Precheck(command, rule: "the resource carries the tag \(OwnershipTag.deployment)=\(deployment)")
    { output, _ in
      let value = output.trimmingCharacters(in: .whitespacesAndNewlines)
      return value == deployment ? nil : "kept: not tagged \(OwnershipTag.deployment)=\(deployment)"
    }
  }
}
