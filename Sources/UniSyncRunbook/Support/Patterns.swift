import Foundation

/// A pattern matching exactly `text`.
func exactPattern(_ text: String) -> String {
  "^" + NSRegularExpression.escapedPattern(for: text) + "$"
}

/// A pattern matching the ARN of one named resource in any partition, region and account:
/// `arnPattern("ecs", "cluster/", name: "unisync")` matches
/// `arn:aws:ecs:ap-northeast-2:123456789012:cluster/unisync`.
/// - Parameters:
///   - resource: what stands before the name (a pattern: `service/([^/]+/)?`).
///   - suffix: what AWS adds after the name (a pattern: `/[0-9a-f]+` for a load balancer).
///   - regional: false for a global service's ARN, which has no region (IAM).
func arnPattern(
  _ service: String, _ resource: String, name: String, suffix: String = "", regional: Bool = true
) -> String {
  #"^arn:aws[a-z-]*:"# + service + (regional ? #":[a-z0-9-]+:"# : "::") + "[0-9]{12}:" + resource
    + NSRegularExpression.escapedPattern(for: name) + suffix + "$"
}
