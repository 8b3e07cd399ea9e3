import Foundation

/// An IPv4 network in CIDR notation.
package struct IPv4CIDR: Sendable, Hashable {
  package var address: UInt32
  package var prefixLength: Int

  package init?(_ text: String) {
    let parts = text.split(separator: "/", omittingEmptySubsequences: false)
    guard parts.count == 2, let length = Int(parts[1]), (0...32).contains(length),
      parts[1].allSatisfy(\.isNumber)
    else { return nil }
    let octets = parts[0].split(separator: ".", omittingEmptySubsequences: false)
    guard octets.count == 4 else { return nil }
    var value: UInt32 = 0
    for octet in octets {
      guard !octet.isEmpty, octet.count <= 3, octet.allSatisfy(\.isNumber),
        let number = UInt32(octet),
        number <= 255
      else { return nil }
      value = value << 8 | number
    }
    let mask: UInt32 = length == 0 ? 0 : ~UInt32(0) << (32 - UInt32(length))
    guard value & ~mask == 0 else { return nil }
    address = value
    prefixLength = length
  }

  var mask: UInt32 { prefixLength == 0 ? 0 : ~UInt32(0) << (32 - UInt32(prefixLength)) }

  package func contains(_ other: IPv4CIDR) -> Bool {
    other.prefixLength >= prefixLength && other.address & mask == address
  }

  package func overlaps(_ other: IPv4CIDR) -> Bool { contains(other) || other.contains(self) }
}

/// Field checks: each returns the reason a value is rejected, or nil.
package enum Validate {
  /// The retention periods CloudWatch Logs accepts, in days.
  static let logRetentionDays = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
  ]

  static func cidr(_ text: String) -> String? {
    guard IPv4CIDR(text) == nil else { return nil }
    let parts = text.split(separator: "/")
    if parts.count == 2,
      IPv4CIDR(String(parts[0]) + "/32") != nil || parts[0].split(separator: ".").count == 4,
      let length = Int(parts[1]), (0...32).contains(length)
    {
      return "'\(text)' is not a valid IPv4 CIDR (host bits are set or an octet is out of range)"
    }
    return "'\(text)' is not a valid IPv4 CIDR (expected a.b.c.d/n)"
  }

  package static func region(_ text: String) -> String? {
    text.range(of: #"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]$"#, options: .regularExpression)
      == nil
      ? "'\(text)' is not an AWS region name (like ap-northeast-2)" : nil
  }

  static func zone(in region: String) -> (String) -> String? {
    { text in
      // An invalid region is reported once, not again for every zone.
      if Validate.region(region) != nil { return nil }
      guard text.hasPrefix(region), text.count == region.count + 1, text.last?.isLetter == true
      else {
        return "'\(text)' is not an availability zone of \(region)"
      }
      return nil
    }
  }

  static func oneOf(_ choices: [String]) -> (String) -> String? {
    { text in
      choices.contains(text)
        ? nil : "'\(text)' must be one of \(choices.map { "'\($0)'" }.joined(separator: ", "))"
    }
  }

  /// A tag value or description: AWS accepts up to 255 characters; control characters never.
  static func tagValue(_ text: String) -> String? {
    if text.isEmpty { return "must not be empty" }
    if text.count > 255 { return "is longer than 255 characters" }
    if text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
      return "contains a control character"
    }
    return nil
  }

  /// A name AWS uses as an identifier (security group, role, cluster, ALB...).
  /// An IAM managed policy's ARN (`arn:aws:iam::aws:policy/...` or an account's own).
  static func managedPolicyARN(_ text: String) -> String? {
    text.range(
      of: #"^arn:aws[a-z-]*:iam::(aws|[0-9]{12}):policy/[A-Za-z0-9+=,.@_/-]+$"#,
      options: .regularExpression) == nil
      ? "'\(text)' is not an IAM managed policy ARN (arn:aws:iam::aws:policy/NAME)" : nil
  }

  static func resourceName(_ text: String) -> String? {
    if let reason = tagValue(text) { return reason }
    if text.count > 64 { return "'\(text)' is longer than 64 characters" }
    return nil
  }

  /// The target group's health check path: AWS takes 1-1024 characters starting with `/`
  /// (CreateTargetGroup's HealthCheckPath), and refuses another at `create-target-group`.
  static func healthCheckPath(_ text: String) -> String? {
    guard text.hasPrefix("/") else { return "'\(text)' must start with '/'" }
    guard text.count <= 1_024 else { return "is longer than 1024 characters" }
    guard text.unicodeScalars.allSatisfy({ (0x21...0x7e).contains($0.value) }) else {
      return "'\(text)' may hold only printable ASCII characters without spaces"
    }
    return nil
  }

  static func identifier(_ text: String) -> String? {
    text.range(of: #"^[A-Za-z0-9][A-Za-z0-9_-]*$"#, options: .regularExpression) == nil
      ? "'\(text)' may hold only letters, digits, '-' and '_'" : nil
  }

  static func identifierWithDots(_ text: String) -> String? {
    text.range(of: #"^[A-Za-z0-9][A-Za-z0-9._-]*$"#, options: .regularExpression) == nil
      ? "'\(text)' may hold only letters, digits, '.', '-' and '_'" : nil
  }

  static func dbIdentifier(_ text: String) -> String? {
    text.range(of: #"^[a-zA-Z](?!.*--)[a-zA-Z0-9-]{0,62}(?<!-)$"#, options: .regularExpression)
      == nil
      ? "'\(text)' is not a valid DB instance identifier (a letter, then letters, digits and single hyphens)"
      : nil
  }

  static func secretName(_ text: String) -> String? {
    text.range(of: #"^[A-Za-z0-9/_+=.@-]{1,512}$"#, options: .regularExpression) == nil
      ? "'\(text)' is not a valid secret name" : nil
  }

  static func environmentVariable(_ text: String) -> String? {
    text.range(of: #"^[A-Za-z_][A-Za-z0-9_]*$"#, options: .regularExpression) == nil
      ? "'\(text)' is not an environment variable name" : nil
  }

  static func queueName(_ text: String) -> String? {
    text.range(of: #"^[A-Za-z0-9_-]{1,80}$"#, options: .regularExpression) == nil
      ? "'\(text)' is not a valid SQS queue name (1-80 letters, digits, '-' or '_')" : nil
  }

  static func hostPort(_ text: String) -> String? {
    text.range(of: #"^[A-Za-z0-9.-]+:[0-9]{1,5}$"#, options: .regularExpression) == nil
      ? "'\(text)' is not host:port" : nil
  }

  package static func httpURL(_ text: String) -> String? {
    guard let url = URL(string: text), ["http", "https"].contains(url.scheme ?? ""), url.host != nil
    else { return "'\(text)' is not an http(s) URL" }
    return nil
  }

  static func port(_ value: JSONValue, path: String, problems: ProblemList) -> Int? {
    guard case .number(let number) = value, let port = Int(exactly: number) else {
      problems.add(path, "must be a port number, not \(value.kindName)")
      return nil
    }
    guard (1...65_535).contains(port) else {
      problems.add(path, "\(port) is out of range (1-65535)")
      return nil
    }
    return port
  }
}
