using Lab.Interop;
using Lab.Sockets;

namespace Lab.Tests.Sockets;

/// <summary>Each hint is produced by a real failing call, never by constructing the exception.</summary>
public class ErrnoTests
{
    [Fact]
    public void EaddrinuseNamesThePortAndTheSsCommand()
    {
        using var first = Listener.Open("127.0.0.1:0");
        var e = Assert.Throws<SyscallException>(() => Listener.Open($"127.0.0.1:{first.Port}"));
        Assert.Equal("bind", e.Syscall);
        Assert.Equal("EADDRINUSE", e.ErrnoName);
        Assert.Equal(errno.EADDRINUSE, e.Errno);
        Assert.Equal($"127.0.0.1:{first.Port}", e.Subject);
        Assert.Contains($"ss -ltnp 'sport = :{first.Port}'", e.Hint);
        Assert.Contains("port 0", e.Hint);
        Assert.StartsWith($"bind(127.0.0.1:{first.Port}) failed: EADDRINUSE (Address already in use). ", e.Message);
    }

    [Fact]
    public void EaccesForALowPortWithoutCapNetBindService()
    {
        int start = int.Parse(File.ReadAllText("/proc/sys/net/ipv4/ip_unprivileged_port_start").Trim());
        Assert.SkipWhen(start <= 1, $"net.ipv4.ip_unprivileged_port_start is {start}: every port is unprivileged here, bind cannot fail with EACCES");
        int port = Math.Min(start - 1, 1023);
        var e = ThreadCaps.Without(linux_capability.CAP_NET_BIND_SERVICE,
            () => Assert.Throws<SyscallException>(() => Listener.Open($"127.0.0.1:{port}")));
        Assert.Equal("bind", e.Syscall);
        Assert.Equal("EACCES", e.ErrnoName);
        Assert.Contains("CAP_NET_BIND_SERVICE", e.Hint);
        Assert.Contains("1024", e.Hint);
    }

    [Fact]
    public void EaddrnotavailForAnAddressNotOnThisHost()
    {
        // 192.0.2.1 (TEST-NET-1) is on no interface: bind fails locally, nothing is sent.
        var e = Assert.Throws<SyscallException>(() => Listener.Open("192.0.2.1:0"));
        Assert.Equal("bind", e.Syscall);
        Assert.Equal("EADDRNOTAVAIL", e.ErrnoName);
        Assert.Contains("ip -br addr", e.Hint);
    }

    [Fact]
    public void EpermForARawSocketWithoutCapNetRaw()
    {
        var e = ThreadCaps.Without(linux_capability.CAP_NET_RAW, () => Assert.Throws<SyscallException>(() => RawSocket.OpenTcp()));
        Assert.Equal("socket", e.Syscall);
        Assert.Equal("EPERM", e.ErrnoName);
        Assert.Contains("CAP_NET_RAW", e.Hint);
        Assert.Contains("--cap-add", e.Hint);
    }

    [Fact]
    public void RawSocketOpensWithCapNetRaw()
    {
        Assert.SkipUnless(ThreadCaps.Has(linux_capability.CAP_NET_RAW), "this process lacks CAP_NET_RAW");
        using var raw = RawSocket.OpenTcp();
        Assert.False(raw.Handle.IsInvalid);
    }

    [Fact]
    public void EconnrefusedWhenNothingListens()
    {
        int port = ClosedPort.Pick();
        var e = Assert.Throws<SyscallException>(() => Client.Connect($"127.0.0.1:{port}"));
        Assert.Equal("connect", e.Syscall);
        Assert.Equal("ECONNREFUSED", e.ErrnoName);
        Assert.Contains("Nothing is listening", e.Hint);
        Assert.Contains($"sport = :{port}", e.Hint);
        // The same through the timeout path (non-blocking connect, SO_ERROR).
        var e2 = Assert.Throws<SyscallException>(() => Client.Connect($"127.0.0.1:{port}", TimeSpan.FromSeconds(5)));
        Assert.Equal("ECONNREFUSED", e2.ErrnoName);
    }

    [Fact]
    public void EtimedoutWhenTheAcceptQueueIsFullAndSynsAreDropped()
    {
        // backlog 0 lets one connection wait; with it unaccepted, the kernel drops the next SYN, so a connect with a
        // timeout runs out (the socket is closed before the exception).
        using var l = Listener.Open("127.0.0.1:0", backlog: 0);
        using var first = Client.Connect(l.LocalEndPoint, TimeSpan.FromSeconds(5));
        Assert.True(Eventually.Holds(() => l.ReadAcceptQueue() is { Length: 1, Limit: 0 }));
        var e = Assert.Throws<SyscallException>(() => Client.Connect(l.LocalEndPoint, TimeSpan.FromMilliseconds(300)));
        Assert.Equal("connect", e.Syscall);
        Assert.Equal("ETIMEDOUT", e.ErrnoName);
        Assert.Contains("accept queue may be full", e.Hint);
    }

    [Fact]
    public void AnErrnoWithoutItsOwnHintStillGetsOne()
    {
        var e = new SyscallException("sendfile", errno.ENOTTY, "fd 3");
        Assert.Equal("ENOTTY", e.ErrnoName);
        Assert.Contains("man 2 sendfile", e.Hint);
        Assert.Equal("errno 4242", ErrnoNames.Name(4242));
    }

    internal static int OpenFds() => Directory.GetFiles("/proc/self/fd").Length;
}

/// <summary>EMFILE lowers the process's RLIMIT_NOFILE, so it runs alone.</summary>
[Collection(nameof(ProcessWide))]
public class EmfileTests
{
    [Fact]
    public unsafe void EmfileWhenTheProcessRunsOutOfDescriptors()
    {
        rlimit saved;
        Assert.Equal(0, sys_resource.getrlimit(sys_resource.RLIMIT_NOFILE, &saved));
        int highest = Directory.GetFiles("/proc/self/fd").Select(f => int.TryParse(Path.GetFileName(f), out var n) ? n : 0).Max();
        var opened = new List<Listener>();
        SyscallException? e = null;
        try
        {
            var lowered = new rlimit { rlim_cur = (ulong)highest + 16, rlim_max = saved.rlim_max };
            Assert.Equal(0, sys_resource.setrlimit(sys_resource.RLIMIT_NOFILE, &lowered));
            for (int i = 0; i < 20_000 && e is null; i++)
            {
                try { opened.Add(Listener.Open("127.0.0.1:0")); }
                catch (SyscallException x) { e = x; }
            }
        }
        finally
        {
            foreach (var l in opened) l.Dispose();
            Assert.Equal(0, sys_resource.setrlimit(sys_resource.RLIMIT_NOFILE, &saved));
        }
        Assert.NotNull(e);
        Assert.Equal("socket", e.Syscall);
        Assert.Equal("EMFILE", e.ErrnoName);
        Assert.Contains("ulimit -n", e.Hint);
        Assert.Contains("close", e.Hint);
    }

    [Fact]
    public unsafe void AcceptUnderEmfileThrowsAndLeavesTheConnectionQueued()
    {
        using var l = Listener.Open("127.0.0.1:0");
        using var client = Client.Connect(l.LocalEndPoint, TimeSpan.FromSeconds(5));
        Assert.True(Eventually.Holds(() => l.ReadAcceptQueue().Length == 1));
        rlimit saved;
        Assert.Equal(0, sys_resource.getrlimit(sys_resource.RLIMIT_NOFILE, &saved));
        var fillers = new List<Fd>();
        SyscallException? e = null;
        try
        {
            int highest = Directory.GetFiles("/proc/self/fd").Select(f => int.TryParse(Path.GetFileName(f), out var n) ? n : 0).Max();
            var lowered = new rlimit { rlim_cur = (ulong)highest + 8, rlim_max = saved.rlim_max };
            Assert.Equal(0, sys_resource.setrlimit(sys_resource.RLIMIT_NOFILE, &lowered));
            for (int i = 0; i < 20_000; i++)
            {
                int fd = Tmds.Linux.LibC.eventfd(0, sys_epoll.EFD_CLOEXEC);
                if (fd < 0) break;
                fillers.Add(new Fd(fd));
            }
            e = Assert.Throws<SyscallException>(() => l.TryAccept());
        }
        finally
        {
            foreach (var f in fillers) f.Dispose();
            Assert.Equal(0, sys_resource.setrlimit(sys_resource.RLIMIT_NOFILE, &saved));
        }
        Assert.Equal("accept4", e.Syscall);
        Assert.Equal("EMFILE", e.ErrnoName);
        Assert.Equal(1, l.ReadAcceptQueue().Length);
        using var later = Assert.IsType<AcceptResult.Accepted>(l.TryAccept()).Connection;
    }
}
