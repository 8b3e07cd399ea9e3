import Foundation
import RunbookProcess

/// Options added to every `aws` call.
package struct AWSSettings: Sendable, Hashable {
  package var region: String
  /// Passed as `--endpoint-url` on every call when set (aws-cli v1 ignores AWS_ENDPOINT_URL for some services).
  package var endpointURL: String?
  package var profile: String?

  package init(region: String, endpointURL: String? = nil, profile: String? = nil) {
    self.region = region
    self.endpointURL = endpointURL
    self.profile = profile
  }

  /// The global options, appended after the operation's own arguments.
  package var globalArguments: [String] {
    var arguments = ["--region", region]
    if let endpointURL { arguments += ["--endpoint-url", endpointURL] }
    if let profile { arguments += ["--profile", profile] }
    return arguments
  }

  /// The `--endpoint-url` among an aws call's arguments, if any.
  package static func endpointURL(in arguments: [String]) -> String? {
    guard let index = arguments.firstIndex(of: "--endpoint-url"), index + 1 < arguments.count
    else { return nil }
    return arguments[index + 1]
  }
}
