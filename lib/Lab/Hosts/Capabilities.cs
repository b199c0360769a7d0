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

/// <summary>Runs code on a fresh thread that lacks capabilities (capabilities are per thread: capset acts on the caller only).</summary>
public static unsafe class Unprivileged
{
    /// <summary>
    /// Runs <paramref name="body"/> on a new thread whose effective capability set lacks <paramref name="drop"/>
    /// (every capability when empty), waits for it (at most <paramref name="timeout"/>, default 30 s), and returns
    /// its result or rethrows its exception. The rest of the process keeps its capabilities.
    /// </summary>
    public static T Run<T>(Func<T> body, TimeSpan? timeout = null, params Capability[] drop)
    {
        ArgumentNullException.ThrowIfNull(body);
        var limit = timeout ?? TimeSpan.FromSeconds(30);
        T result = default!;
        Exception? failure = null;
        var t = new Thread(() =>
        {
            try
            {
                var hdr = new Lab.Interop.__user_cap_header_struct { version = Lab.Interop.linux_capability._LINUX_CAPABILITY_VERSION_3 };
                var data = stackalloc Lab.Interop.__user_cap_data_struct[Lab.Interop.linux_capability._LINUX_CAPABILITY_U32S_3];
                if (Lab.Interop.linux_capability.capget(&hdr, data) != 0) throw Lab.Sockets.Sys.Fail("capget", "this thread");
                if (drop.Length == 0) { data[0].effective = 0; data[1].effective = 0; }
                foreach (var cap in drop) data[(int)cap / 32].effective &= ~(1u << ((int)cap % 32));
                if (Lab.Interop.linux_capability.capset(&hdr, data) != 0) throw Lab.Sockets.Sys.Fail("capset", "this thread");
                result = body();
            }
            catch (Exception e) { failure = e; }
        }) { IsBackground = true, Name = "lab-unprivileged" };
        t.Start();
        if (!t.Join(limit)) throw new TimeoutException($"The unprivileged thread did not finish within {limit.TotalSeconds:0} s.");
        if (failure != null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(failure).Throw();
        return result;
    }
}
