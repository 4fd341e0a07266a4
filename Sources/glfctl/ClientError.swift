// What glfctl itself refuses (files it cannot read or write); glfd's refusals are ProtocolErrors
// and the connection's are GLFDClientErrors.
struct ClientError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
