namespace Lab.Hosts;

/// <summary>The Linux capabilities the chapters need.</summary>
public enum Capability
{
    /// <summary>CAP_NET_BIND_SERVICE (10): bind ports below 1024.</summary>
    NetBindService = 10,
    /// <summary>CAP_NET_ADMIN (12): namespaces' interfaces, nftables, net.* sysctls.</summary>
    NetAdmin = 12,
    /// <summary>CAP_NET_RAW (13): raw and packet sockets (crafted SYNs, packet capture).</summary>
    NetRaw = 13,
    /// <summary>CAP_SYS_ADMIN (21): entering a network namespace with setns.</summary>
    SysAdmin = 21,
}

/// <summary>
/// Reads the calling thread's effective capabilities (CapEff in /proc/thread-self/status), as `capsh --print` does.
/// Capabilities are per thread on Linux; a process normally holds the same set on every thread.
/// </summary>
public static class Capabilities
{
    /// <summary>True when the calling process holds <paramref name="cap"/> in its effective set.</summary>
    public static bool Has(Capability cap) => (Effective() >> (int)cap & 1) == 1;

    /// <summary>The effective capability mask.</summary>
    public static ulong Effective()
    {
        foreach (var line in File.ReadLines("/proc/thread-self/status"))
            if (line.StartsWith("CapEff:"))
                return Convert.ToUInt64(line[7..].Trim(), 16);
        return 0;
    }

    /// <summary>The kernel's name of a capability, e.g. CAP_NET_ADMIN.</summary>
    public static string Name(Capability cap) => cap switch
    {
        Capability.NetBindService => "CAP_NET_BIND_SERVICE",
        Capability.NetAdmin => "CAP_NET_ADMIN",
        Capability.NetRaw => "CAP_NET_RAW",
        Capability.SysAdmin => "CAP_SYS_ADMIN",
        _ => "CAP_" + cap,
    };
}
