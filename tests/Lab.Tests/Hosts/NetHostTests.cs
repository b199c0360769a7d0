using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Lab.Hosts;
using Lab.Sockets;

namespace Lab.Tests.Hosts;

public class NetHostTests
{
    static void SkipUnlessNetAdmin() =>
        Assert.SkipUnless(Capabilities.Has(Capability.NetAdmin) && Capabilities.Has(Capability.SysAdmin),
            "needs CAP_NET_ADMIN and CAP_SYS_ADMIN (run as root)");

    [Fact]
    public async Task AHostIsANamespaceOnAWireThatThisHostCanReach()
    {
        SkipUnlessNetAdmin();
        string ns;
        using (var host = NetHost.Create("t1"))
        {
            ns = host.Namespace;
            Assert.Contains(ns, Command.Check("ip", "netns", "list"));
            // A listener made inside the namespace belongs to it: `ss` in the namespace sees it, ss here does not.
            using var listener = host.Run(() =>
            {
                var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                s.Bind(new IPEndPoint(IPAddress.Any, 0));
                s.Listen(4);
                return s;
            });
            var port = ((IPEndPoint)listener.LocalEndPoint!).Port;
            Assert.Contains($":{port}", host.Exec("ss", "-ltnH").StdOut);
            Assert.DoesNotContain($"0.0.0.0:{port} ", Command.Check("ss", "-ltnH"));
            using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await client.ConnectAsync(new IPEndPoint(host.Address, port), TestContext.Current.CancellationToken).AsTask().WaitAsync(TimeSpan.FromSeconds(5), TestContext.Current.CancellationToken);
            using var accepted = listener.Accept();
            Assert.Equal(host.HostAddress, ((IPEndPoint)accepted.RemoteEndPoint!).Address);
        }
        Assert.DoesNotContain(ns, Command.Check("ip", "netns", "list"));
        Assert.DoesNotContain(ns, LabResources.Count().Keys);
    }

    [Fact]
    public void UnassignedAddressesAreInTheHostsSubnetButNeverItsOwn()
    {
        SkipUnlessNetAdmin();
        using var host = NetHost.Create("t6");
        var sources = host.UnassignedAddresses;
        Assert.Equal(100, sources.Count);
        Assert.All(sources, s => Assert.True(LabAddresses.Contains(s)));
        Assert.DoesNotContain(host.Address, sources);
        Assert.DoesNotContain(host.HostAddress, sources);
        using (host.PinNeighboursToNowhere(sources))
            Assert.Contains("02:00:00:00:00:01", host.Ip("neigh", "show"));
        Assert.DoesNotContain("02:00:00:00:00:01", host.Ip("neigh", "show"));
    }

    [Fact]
    public void ANamespaceHasItsOwnSysctls()
    {
        SkipUnlessNetAdmin();
        var outside = File.ReadAllText("/proc/sys/net/ipv4/tcp_synack_retries").Trim();
        using var host = NetHost.Create("t2");
        var inside = host.Run(() =>
        {
            File.WriteAllText("/proc/sys/net/ipv4/tcp_synack_retries", outside == "2" ? "3" : "2");
            return File.ReadAllText("/proc/sys/net/ipv4/tcp_synack_retries").Trim();
        });
        Assert.NotEqual(outside, inside);
        Assert.Equal(outside, File.ReadAllText("/proc/sys/net/ipv4/tcp_synack_retries").Trim());
    }

    [Fact]
    public async Task ADropRuleInTheNamespaceStopsConnections()
    {
        SkipUnlessNetAdmin();
        using var host = NetHost.Create("t3");
        using var listener = host.Run(() =>
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            s.Bind(new IPEndPoint(IPAddress.Any, 0));
            s.Listen(4);
            return s;
        });
        var port = ((IPEndPoint)listener.LocalEndPoint!).Port;
        using (host.AddRule("input", $"tcp dport {port} drop"))
        {
            using var blocked = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            var attempt = blocked.ConnectAsync(new IPEndPoint(host.Address, port), TestContext.Current.CancellationToken).AsTask();
            // The SYN is dropped: no answer at all, so the connect is still pending after a second.
            Assert.False(await attempt.CompletesWithin(TimeSpan.FromSeconds(1)));
        }
        using var allowed = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await allowed.ConnectAsync(new IPEndPoint(host.Address, port), TestContext.Current.CancellationToken).AsTask().WaitAsync(TimeSpan.FromSeconds(5), TestContext.Current.CancellationToken);
    }

    [Fact]
    public void TrafficIsOnlyAllowedToLoopbackAndTheLabsOwnHosts()
    {
        Assert.True(LabAddresses.Contains(IPAddress.Loopback));
        Assert.True(LabAddresses.Contains(IPAddress.Parse("127.3.4.5")));
        Assert.True(LabAddresses.Contains(IPAddress.IPv6Loopback));
        foreach (var other in new[] { "8.8.8.8", "192.0.2.1", "10.0.0.1", "198.18.200.2", "::ffff:1.1.1.1", "2001:db8::1" })
        {
            var e = Assert.Throws<ArgumentException>(() => LabAddresses.Ensure(IPAddress.Parse(other)));
            Assert.Contains(other.Replace("::ffff:", ""), e.Message.Replace("::ffff:", ""));
            Assert.Contains("NetHost.Create", e.Message);
        }
    }

    [Fact]
    public void BadHostNamesAreRefusedBeforeTouchingTheMachine()
    {
        var e = Assert.Throws<ArgumentException>(() => NetHost.Create("no spaces please"));
        Assert.Contains("no spaces please", e.Message);
    }
}

public class NamespaceCountersTests
{
    [Fact]
    public void CountersReadInsideAHostAreTheHostsOwn()
    {
        Assert.SkipUnless(Capabilities.Has(Capability.NetAdmin) && Capabilities.Has(Capability.SysAdmin), "needs root");
        using var host = NetHost.Create("ctr");
        // A new namespace has made no connections yet; this one has made many.
        var inside = host.Run(() => Lab.Observe.NetCounters.Read()[Lab.Observe.NetCounters.Names.ActiveOpens]);
        var outside = Lab.Observe.NetCounters.Read()[Lab.Observe.NetCounters.Names.ActiveOpens];
        Assert.Equal(0, inside);
        Assert.True(outside > 0);
    }

    /// <summary>
    /// Creating a host waits while another process holds the machine-wide lock (here flock(1), as a second lab process
    /// would hold it): two processes once picked the same free index, lab10h, and one failed with "File exists".
    /// </summary>
    [Fact]
    public void CreatingAHostWaitsForAnotherProcessCreatingOne()
    {
        Assert.SkipUnless(Capabilities.Has(Capability.NetAdmin) && Capabilities.Has(Capability.SysAdmin), "needs CAP_NET_ADMIN and CAP_SYS_ADMIN (run as root)");
        var lockPath = Path.Combine(Path.GetTempPath(), "lab-nethost.lock");
        var psi = new System.Diagnostics.ProcessStartInfo("flock", [lockPath, "-c", "echo held; sleep 1.5"]) { RedirectStandardOutput = true, UseShellExecute = false };
        using var holder = System.Diagnostics.Process.Start(psi)!;
        Assert.Equal("held", holder.StandardOutput.ReadLine());             // the other process has the lock now
        var clock = System.Diagnostics.Stopwatch.StartNew();
        using var host = NetHost.Create("waits");
        Assert.True(clock.Elapsed > TimeSpan.FromSeconds(1), $"created after {clock.Elapsed.TotalMilliseconds:0} ms, while the lock was held");
        Assert.True(holder.WaitForExit(5000));
    }
}
