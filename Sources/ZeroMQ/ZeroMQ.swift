// Facts about the libzmq this process runs with.
import CZeroMQ

public enum ZeroMQ {
    /// libzmq's version, e.g. "4.3.4".
    public static var version: String {
        var major: Int32 = 0, minor: Int32 = 0, patch: Int32 = 0
        zmq_version(&major, &minor, &patch)
        return "\(major).\(minor).\(patch)"
    }

    /// Whether libzmq was built with a capability: "curve", "ipc", "draft", ... Debian's has CURVE.
    public static func has(_ capability: String) -> Bool {
        zmq_has(capability) != 0
    }
}
