using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Lab.Sockets;
using static Tmds.Linux.LibC;

namespace Lab.Hosts;

/// <summary>
/// A second "host" on this machine: a network namespace joined to this one by a veth pair. The namespace has its
/// own interfaces, routes, sockets, sysctls (net.*) and counters, like another machine on a private wire.
/// Addresses come from 198.18.0.0/15, the range RFC 2544 reserves for benchmark tests, one /24 per host:
/// this side is 198.18.N.1, the namespace's side 198.18.N.2.
/// Disposing deletes the namespace, which deletes the veth pair with it.
/// </summary>
public sealed class NetHost : IDisposable
{
    const string Prefix = "lab-";
    static readonly object Gate = new();
    static readonly List<NetHost> LiveHosts = new();

    int _disposed;

    /// <summary>The namespace's name, as `ip netns list` shows it (lab-NAME-PID-N).</summary>
    public string Namespace { get; }
    /// <summary>This side's end of the veth pair (in the namespace the lab runs in).</summary>
    public string HostInterface { get; }
    /// <summary>The namespace's end of the veth pair.</summary>
    public string PeerInterface { get; }
    /// <summary>This side's address on the wire (198.18.N.1).</summary>
    public IPAddress HostAddress { get; }
    /// <summary>The namespace's address on the wire (198.18.N.2): the other host's address.</summary>
    public IPAddress Address { get; }
    /// <summary>The /24 both addresses sit in.</summary>
    public string Subnet { get; }

    NetHost(string ns, string hostIf, string peerIf, int n)
    {
        Namespace = ns; HostInterface = hostIf; PeerInterface = peerIf;
        HostAddress = IPAddress.Parse($"198.18.{n}.1");
        Address = IPAddress.Parse($"198.18.{n}.2");
        Subnet = $"198.18.{n}.0/24";
    }

    /// <summary>Every host the lab has created and not yet disposed.</summary>
    public static IReadOnlyList<NetHost> Live { get { lock (Gate) return LiveHosts.ToList(); } }

    /// <summary>
    /// Creates a namespace named after <paramref name="name"/>, a veth pair into it, addresses on both ends, and brings
    /// both ends and the namespace's loopback up. Needs CAP_NET_ADMIN (root in the devcontainer).
    /// </summary>
    public static NetHost Create(string name = "peer")
    {
        if (string.IsNullOrWhiteSpace(name) || name.Length > 12 || !name.All(c => char.IsAsciiLetterOrDigit(c)))
            throw new ArgumentException($"Host name '{name}' must be 1-12 ASCII letters or digits.", nameof(name));
        RequireNetAdmin();
        RemoveStale();
        using var machineWide = MachineLock.Take();
        lock (Gate)
        {
            var n = FreeIndex();
            var ns = $"{Prefix}{name}-{Environment.ProcessId}-{n}";
            var hostIf = $"lab{n}h";
            var peerIf = $"lab{n}p";
            var host = new NetHost(ns, hostIf, peerIf, n);
            try
            {
                Command.Check("ip", "netns", "add", ns);
                Command.Check("ip", "link", "add", hostIf, "type", "veth", "peer", "name", peerIf, "netns", ns);
                Command.Check("ip", "addr", "add", $"{host.HostAddress}/24", "dev", hostIf);
                Command.Check("ip", "link", "set", hostIf, "up");
                host.Ip("addr", "add", $"{host.Address}/24", "dev", peerIf);
                host.Ip("link", "set", peerIf, "up");
                host.Ip("link", "set", "lo", "up");
                host.WaitForCarrier();
            }
            catch
            {
                host.Teardown();
                throw;
            }
            LiveHosts.Add(host);
            LabAddresses.Add(host.HostAddress);   // traffic may go to this host's /24 from now on
            LabResources.Track(host, "NetHost");
            return host;
        }
    }

    /// <summary>
    /// Waits until both ends of the veth pair are operationally up. `ip link set up` can return before the kernel's
    /// linkwatch worker (a kworker) has attached the devices' queueing discipline, and until it has, a veth holds the noop
    /// qdisc and drops what it is given. Here it has always run by the time `ip` returns (a probe read noqueue and
    /// state UP at once, three times of three), but a worker can run late on a loaded machine; the wait costs two `ip`
    /// calls when it has run. (A CI run on a loaded machine saw three 300 ms connects across a new pair all time out;
    /// whether this was the cause is not known.)
    /// </summary>
    void WaitForCarrier()
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            bool hostUp = Command.Check("ip", "-o", "link", "show", "dev", HostInterface).Contains("state UP");
            bool peerUp = Ip("-o", "link", "show", "dev", PeerInterface).Contains("state UP");
            if (hostUp && peerUp) return;
            if (clock.Elapsed > TimeSpan.FromSeconds(10))
                throw new InvalidOperationException($"The veth pair {HostInterface}/{PeerInterface} was not up after 10 s (host side {(hostUp ? "up" : "down")}, " +
                    $"other side {(peerUp ? "up" : "down")}): the kernel's linkwatch worker did not run. Is the machine overloaded?");
            Thread.Sleep(5);
        }
    }

    /// <summary>Runs `ip ARGS` inside the namespace and returns its output.</summary>
    public string Ip(params string[] args) => Command.Check("ip", ["-n", Namespace, .. args]);

    /// <summary>Runs a program inside the namespace (`ip netns exec`) and returns its result without throwing.</summary>
    public CommandResult Exec(string file, params string[] args) =>
        Command.Run("ip", ["netns", "exec", Namespace, file, .. args]);

    /// <summary>
    /// Runs <paramref name="work"/> on a thread that has entered the namespace. Sockets created there belong to the
    /// namespace for their whole life, whichever thread uses them later; /proc/sys/net and /proc/thread-self/net
    /// opened there show the namespace's sysctls and counters.
    /// </summary>
    public T Run<T>(Func<T> work)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        T result = default!;
        Exception? error = null;
        var t = new Thread(() =>
        {
            try
            {
                Enter();
                result = work();
            }
            catch (Exception e) { error = e; }
        }) { IsBackground = true, Name = "lab-netns " + Namespace };
        t.Start();
        t.Join();
        if (error != null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(error).Throw();
        return result;
    }

    /// <summary>Runs <paramref name="work"/> inside the namespace (see <see cref="Run{T}"/>).</summary>
    public void Run(Action work) => Run(() => { work(); return 0; });

    void Enter()
    {
        var path = "/run/netns/" + Namespace;
        Microsoft.Win32.SafeHandles.SafeFileHandle handle;
        try { handle = File.OpenHandle(path); }
        catch (IOException e) { throw new LabSetupException($"Cannot open {path}: {e.Message}.", "The namespace is gone; create the host again."); }
        using (handle)
        {
            if (setns((int)handle.DangerousGetHandle(), CLONE_NEWNET) != 0)
                throw new LabSetupException($"setns({Namespace}) failed: errno {errno}.",
                    "Entering a network namespace needs CAP_SYS_ADMIN: run as root.");
        }
    }

    /// <summary>
    /// Adds an nftables rule inside the namespace, e.g. <c>AddRule("output", "tcp flags rst drop")</c> so the namespace's
    /// kernel never answers a stray SYN-ACK with a reset. Rules live in the namespace's own table `inet lab` and
    /// vanish with it; disposing the returned handle removes the rule earlier.
    /// </summary>
    public IDisposable AddRule(string hook, string rule)
    {
        if (hook is not ("input" or "output" or "prerouting" or "postrouting" or "forward"))
            throw new ArgumentException($"nftables hook '{hook}' is not one of input, output, prerouting, postrouting, forward.", nameof(hook));
        Nft($"add table inet lab");
        Nft($"add chain inet lab {hook} {{ type filter hook {hook} priority 0 ; }}");
        var output = Nft($"--echo --handle add rule inet lab {hook} {rule}");
        var handle = System.Text.RegularExpressions.Regex.Match(output, @"# handle (\d+)").Groups[1].Value;
        return new RuleHandle(this, hook, handle);
    }

    string Nft(string command)
    {
        var r = Command.Run("ip", ["netns", "exec", Namespace, "nft", .. command.Split(' ', StringSplitOptions.RemoveEmptyEntries)]);
        if (!r.Ok)
            throw new LabSetupException($"nft {command} failed in {Namespace}: {r.StdErr.Trim()}",
                r.StdErr.Contains("No such file") ? "Install nftables (apt-get install nftables)." : "Check the rule's syntax (man nft).");
        return r.StdOut;
    }

    sealed class RuleHandle(NetHost host, string hook, string handle) : IDisposable
    {
        int _done;
        public void Dispose()
        {
            if (Interlocked.Exchange(ref _done, 1) != 0 || host._disposed != 0 || handle.Length == 0) return;
            host.Exec("nft", "delete", "rule", "inet", "lab", hook, "handle", handle);
        }
    }

    /// <summary>
    /// Pins <paramref name="addresses"/> (on the host's side of the wire) to a link address no interface owns
    /// (02:00:00:00:00:01, locally administered), as permanent neighbour entries of the host's veth. Packets to them
    /// leave the host and are dropped silently by the other end, which they are not addressed to: no ARP is asked, so no
    /// failed resolution ever answers the sender with ICMP host-unreachable (which would, for instance, remove a SYN-ACK's
    /// request from a listener's SYN queue). The entries vanish with the namespace; disposing the handle removes them earlier.
    /// </summary>
    public IDisposable PinNeighboursToNowhere(IReadOnlyList<IPAddress> addresses)
    {
        foreach (var a in addresses)
            if (!InSubnet(a)) throw new ArgumentException($"{a} is not in {Subnet}, the subnet of {Namespace}'s veth.", nameof(addresses));
        var r = IpBatch(addresses.Select(a => $"neigh replace {a} lladdr 02:00:00:00:00:01 dev {PeerInterface} nud permanent"));
        if (!r.Ok) throw new LabSetupException($"`{r.Command}` failed in {Namespace} (exit {r.ExitCode}): {r.StdErr.Trim()}", "Check that iproute2 is installed and the host still exists.");
        return new NeighbourPins(this, addresses);
    }

    /// <summary>
    /// Addresses of this host's /24 that no interface holds, .100 to .199: sources for spoofed segments (a SYN flood's)
    /// whose answers must go nowhere but the lab's wire. Pin them with <see cref="PinNeighboursToNowhere"/>, so no failed
    /// ARP answers the sender with ICMP host-unreachable.
    /// </summary>
    public IReadOnlyList<IPAddress> UnassignedAddresses
    {
        get
        {
            var b = Address.GetAddressBytes();
            return Enumerable.Range(100, 100).Select(i => new IPAddress(new[] { b[0], b[1], b[2], (byte)i })).ToList();
        }
    }

    /// <summary>True when <paramref name="address"/> (IPv4) is in this host's /24, <see cref="Subnet"/>.</summary>
    bool InSubnet(IPAddress address) =>
        address.AddressFamily == AddressFamily.InterNetwork && HostAddress.GetAddressBytes().AsSpan(0, 3).SequenceEqual(address.GetAddressBytes().AsSpan(0, 3));

    /// <summary>Runs `ip` commands in this host's namespace, one per line (ip -batch; -force goes on after a failed line).</summary>
    CommandResult IpBatch(IEnumerable<string> lines, bool force = false) =>
        Command.Run("ip", force ? ["-n", Namespace, "-force", "-batch", "-"] : ["-n", Namespace, "-batch", "-"], stdin: string.Join('\n', lines) + "\n");

    sealed class NeighbourPins(NetHost host, IReadOnlyList<IPAddress> addresses) : IDisposable
    {
        int _done;
        public void Dispose()
        {
            if (Interlocked.Exchange(ref _done, 1) != 0 || host._disposed != 0) return;
            host.IpBatch(addresses.Select(a => $"neigh del {a} dev {host.PeerInterface}"), force: true);
        }
    }

    /// <summary>Deletes lab namespaces left behind by processes that no longer exist (a crashed run).</summary>
    public static int RemoveStale()
    {
        int removed = 0;
        if (!Directory.Exists("/run/netns")) return 0;
        foreach (var path in Directory.GetFiles("/run/netns", Prefix + "*"))
        {
            var parts = Path.GetFileName(path).Split('-');
            if (parts.Length >= 4 && int.TryParse(parts[^2], out var pid) && pid != Environment.ProcessId && !Directory.Exists($"/proc/{pid}"))
            {
                if (Command.Run("ip", ["netns", "delete", Path.GetFileName(path)]).Ok) removed++;
            }
        }
        return removed;
    }

    /// <summary>
    /// An exclusive lock (flock on lab-nethost.lock in the temp folder) held while a host picks its free index and creates its veth
    /// pair. Two lab processes (a test host and the `lab repl` it started, or two chapters' kernels) each scanned the
    /// links, found lab10h free, and one failed with "File exists" or deleted the other's pair ("No such device").
    /// </summary>
    sealed class MachineLock : IDisposable
    {
        static readonly string LockPath = Path.Combine(Path.GetTempPath(), "lab-nethost.lock");
        readonly FileStream _file;
        MachineLock(FileStream file) => _file = file;

        public static MachineLock Take()
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
            while (true)
            {
                // .NET takes flock(LOCK_EX | LOCK_NB) for FileShare.None; another holder makes this throw IOException.
                try { return new MachineLock(new FileStream(LockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None)); }
                catch (IOException) when (DateTime.UtcNow < deadline) { Thread.Sleep(20); }
                catch (IOException e)
                {
                    throw new LabSetupException($"Another lab process has held {LockPath} for 20 s while creating a second host ({e.Message}).",
                        "Wait for the other run to finish, or find the process that holds it with `fuser " + LockPath + "`.");
                }
            }
        }

        public void Dispose() => _file.Dispose();
    }

    static int FreeIndex()
    {
        // A /24 is free when no interface name or address on this machine already uses it (another run's host,
        // or a real network in 198.18/15).
        var links = Command.Check("ip", "-o", "link", "show");
        var addrs = Command.Check("ip", "-o", "addr", "show");
        var routes = Command.Check("ip", "route", "show");
        for (int n = 10; n < 250; n++)
        {
            if (links.Contains($" lab{n}h") || links.Contains($" lab{n}h@")) continue;
            if (addrs.Contains($"198.18.{n}.") || routes.Contains($"198.18.{n}.")) continue;
            if (routes.Contains("198.18.0.0/15") || routes.Contains("198.18.0.0/16")) break;
            return n;
        }
        throw new LabSetupException("No free 198.18.N.0/24 subnet for a lab host (all in use or routed elsewhere).",
            "Dispose hosts you no longer need, or run NetHost.RemoveStale().");
    }

    // A missing capability is not a bug in the cell: it skips the cell with the fix (Needs), in every host.
    static void RequireNetAdmin() =>
        Needs.Capabilities("a second host: a network namespace joined to this one by a veth pair", Capability.NetAdmin, Capability.SysAdmin);

    void Teardown()
    {
        Command.Run("ip", ["netns", "delete", Namespace]);
        // The veth pair normally dies with the namespace; a half-built pair may remain on this side.
        Command.Run("ip", ["link", "delete", HostInterface]);
    }

    /// <summary>Deletes the namespace and its veth pair. Safe to call twice.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        lock (Gate) LiveHosts.Remove(this);
        LabAddresses.Remove(HostAddress);
        Teardown();
        LabResources.Untrack(this);
    }

    public override string ToString() => $"{Namespace}: {HostInterface} {HostAddress} <-> {PeerInterface} {Address}";
}
