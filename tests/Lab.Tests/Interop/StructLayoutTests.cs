using Lab.Interop;
using Lab.Sockets;

namespace Lab.Tests.Interop;

/// <summary>Every struct and constant the lab passes to the kernel, proven against gcc and the system headers.</summary>
public class StructLayoutTests
{
    static readonly HashSet<string> Bitfields = new()
    {
        // C bitfields have no offsetof; their bytes sit between tcpi_options (5) and tcpi_rto (8), both asserted.
        nameof(tcp_info.tcpi_snd_rcv_wscale), nameof(tcp_info.tcpi_delivery_rate_app_limited_fastopen_client_fail),
    };

    [Fact]
    public void TcpInfoMatchesTheKernelHeaderAndItsUapiTail()
    {
        // Fields the system header (linux-libc-dev) declares are checked against struct tcp_info itself; the newer
        // fields it lacks are declared after it exactly as the kernel's include/uapi/linux/tcp.h (6.18) appends them.
        var header = File.ReadAllText("/usr/include/linux/tcp.h");
        var body = header[header.IndexOf("struct tcp_info {", StringComparison.Ordinal)..];
        body = body[..body.IndexOf("};", StringComparison.Ordinal)];
        var fields = typeof(tcp_info).GetFields().Select(f => f.Name).ToList();
        var inHeader = fields.Where(f => System.Text.RegularExpressions.Regex.IsMatch(body, $@"\b{f}\b")).ToHashSet();
        var tail = fields.SkipWhile(f => inHeader.Contains(f) || Bitfields.Contains(f)).ToList();
        Assert.Contains("tcpi_unacked", inHeader);
        Assert.Contains("tcpi_bytes_received", inHeader);
        Assert.Contains("tcpi_total_retrans", inHeader);

        var c = new CLayout("linux/tcp.h");
        var tailDecl = string.Join("\n", tail.Select(f => $"  {(typeof(tcp_info).GetField(f)!.FieldType == typeof(ushort) ? "__u16" : "__u32")} {f};"));
        c.Raw($"struct lab_tcp_info {{\n  struct tcp_info head;\n{tailDecl}\n}};");
        c.Raw($"static_assert(sizeof(struct tcp_info) % 8 == 0, \"struct tcp_info has no tail padding, so lab_tcp_info's tail starts where the kernel's does\");");
        var headerOnly = fields.Where(f => !inHeader.Contains(f)).ToHashSet();
        headerOnly.UnionWith(Bitfields);
        c.Struct<tcp_info>("struct tcp_info", skip: headerOnly, checkSize: tail.Count == 0);
        if (tail.Count > 0)
        {
            var notTail = fields.Except(tail).ToHashSet();
            c.Struct<tcp_info>("struct lab_tcp_info", skip: notTail);
        }
        c.Compile("tcp_info");
    }

    [Fact]
    public void TcpInfoSizeIsWhatThisKernelReturns()
    {
        // getsockopt(TCP_INFO) writes min(kernel struct, our buffer) and says how much: on 6.18 that is all 280 bytes.
        using var l = Listener.Open("127.0.0.1:0");
        TcpInfo.ReadRaw(l.Handle, out int n);
        Assert.True(n <= System.Runtime.InteropServices.Marshal.SizeOf<tcp_info>(), $"the kernel returned {n} bytes");
        Assert.True(n >= 232, $"the kernel returned only {n} bytes of tcp_info: older than 5.4?");
        if (Environment.OSVersion.Version >= new Version(6, 18))
            Assert.Equal(System.Runtime.InteropServices.Marshal.SizeOf<tcp_info>(), n);
    }

    [Fact]
    public void IoUringStructsAndConstants()
    {
        var rename = new Dictionary<string, string> { ["op_flags"] = "accept_flags" };
        // Debian 12's header is Linux 6.1's: the fields Linux 6.5 named user_addr (IORING_SETUP_NO_MMAP) and flags
        // (IOU_PBUF_RING_MMAP) were still reserved there, at the same offsets.
        var offsets61 = new Dictionary<string, string> { ["user_addr"] = "resv2" };
        var bufReg61 = new Dictionary<string, string> { ["flags"] = "pad" };
        new CLayout("linux/io_uring.h", "linux/time_types.h", "sys/mman.h", "sys/syscall.h")
            .Struct<io_sqring_offsets>("struct io_sqring_offsets", offsets61)
            .Struct<io_cqring_offsets>("struct io_cqring_offsets", offsets61)
            .Struct<io_uring_params>("struct io_uring_params")
            .Struct<io_uring_sqe>("struct io_uring_sqe", rename)
            .Struct<io_uring_cqe>("struct io_uring_cqe")
            .Struct<io_uring_buf>("struct io_uring_buf")
            .Struct<io_uring_buf_reg>("struct io_uring_buf_reg", bufReg61)
            .Struct<io_uring_getevents_arg>("struct io_uring_getevents_arg")
            .Struct<__kernel_timespec>("struct __kernel_timespec")
            .Raw("static_assert(offsetof(struct io_uring_buf_ring, tail) == offsetof(struct io_uring_buf, resv), \"the buffer ring's tail is the first entry's resv\");")
            .Constants(typeof(io_uring))
            .Constants(typeof(io_uring_sys), cName: n => n.StartsWith("SYS_", StringComparison.Ordinal) ? "__NR_" + n[4..] : n)
            .Compile("io_uring");
    }

    [Fact]
    public void SocketStructsAndConstants()
    {
        new CLayout("sys/socket.h", "netinet/in.h", "sys/time.h", "sys/ioctl.h", "linux/sockios.h", "errno.h")
            .Struct<sockaddr_in>("struct sockaddr_in")
            .Struct<sockaddr_in6>("struct sockaddr_in6")
            .Raw("union sockaddr_union { sa_family_t sa_family; struct sockaddr_in in4; struct sockaddr_in6 in6; };")
            .Struct<sockaddr_union>("union sockaddr_union")
            .Struct<linger>("struct linger")
            .Struct<timeval>("struct timeval")
            .Constants(typeof(sys_socket))
            .Constants(typeof(sys_ioctl))
            .Constants(typeof(errno))
            .Constants(typeof(AcceptFlags), skip: new HashSet<string> { "None" }, cName: n => n == "NonBlock" ? "SOCK_NONBLOCK" : "SOCK_CLOEXEC")
            .Constants(typeof(ShutdownHow), cName: n => n switch { "Read" => "SHUT_RD", "Write" => "SHUT_WR", _ => "SHUT_RDWR" })
            .Compile("socket");
    }

    [Fact]
    public void TcpConstantsAndStates()
    {
        var c = new CLayout("linux/tcp.h");
        // TCPI_OPT_USEC_TS/TFO_CHILD came after the 6.1 header; TCP_* states live in glibc's netinet/tcp.h (next test).
        c.Constants(typeof(netinet_tcp), skip: new HashSet<string>(typeof(netinet_tcp).GetFields().Select(f => f.Name)
            .Where(n => n is "TCPI_OPT_USEC_TS" or "TCPI_OPT_TFO_CHILD" || IsState(n))));
        c.Compile("tcp_constants");

        var states = new CLayout("netinet/tcp.h")
            .Constants(typeof(netinet_tcp), skip: new HashSet<string>(typeof(netinet_tcp).GetFields().Select(f => f.Name).Where(n => !IsState(n) || n == "TCP_NEW_SYN_RECV")))
            .Constants(typeof(TcpState), skip: new HashSet<string> { "Unknown", "NewSynRecv", "BoundInactive" }, cName: n => "TCP_" + n switch
            {
                "SynSent" => "SYN_SENT", "SynRecv" => "SYN_RECV", "FinWait1" => "FIN_WAIT1", "FinWait2" => "FIN_WAIT2",
                "TimeWait" => "TIME_WAIT", "CloseWait" => "CLOSE_WAIT", "LastAck" => "LAST_ACK", _ => n.ToUpperInvariant(),
            });
        // TCP_NEW_SYN_RECV (12) is kernel-internal (include/net/tcp_states.h): it follows TCP_CLOSING (11).
        states.Raw("static_assert(TCP_CLOSING + 1 == 12, \"TCP_NEW_SYN_RECV follows TCP_CLOSING\");");
        states.Compile("tcp_states");
    }

    static bool IsState(string n) => n is "TCP_ESTABLISHED" or "TCP_SYN_SENT" or "TCP_SYN_RECV" or "TCP_FIN_WAIT1" or "TCP_FIN_WAIT2"
        or "TCP_TIME_WAIT" or "TCP_CLOSE" or "TCP_CLOSE_WAIT" or "TCP_LAST_ACK" or "TCP_LISTEN" or "TCP_CLOSING" or "TCP_NEW_SYN_RECV";

    [Fact]
    public void EpollEventIsPackedOnX64()
    {
        // struct epoll_event is __attribute__((packed)) on x86_64: 12 bytes, data at offset 4.
        var c = new CLayout("sys/epoll.h", "sys/eventfd.h");
        if (System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture == System.Runtime.InteropServices.Architecture.X64)
        {
            c.Struct<epoll_event>("struct epoll_event");
            c.Struct<EpollEvent>("struct epoll_event");   // the friendly wrapper: one epoll_event, so the same 12 bytes
            c.Raw("static_assert(sizeof(struct epoll_event) == 12, \"x86_64 epoll_event is packed: 12 bytes\");");
            Assert.Equal(12, System.Runtime.InteropServices.Marshal.SizeOf<EpollEvent>());
        }
        else c.Struct<epoll_event_aligned>("struct epoll_event");
        c.Constants(typeof(sys_epoll));
        c.Constants(typeof(EpollEvents), skip: new HashSet<string> { "None" }, cName: n => n switch
        {
            "In" => "EPOLLIN", "Out" => "EPOLLOUT", "RdHup" => "EPOLLRDHUP", "Pri" => "EPOLLPRI", "Err" => "EPOLLERR",
            "Hup" => "EPOLLHUP", "Et" => "EPOLLET", "OneShot" => "EPOLLONESHOT", "Exclusive" => "EPOLLEXCLUSIVE", _ => "EPOLLWAKEUP",
        });
        c.Compile("epoll");
    }

    [Fact]
    public void ClockFileAndPacketConstants()
    {
        new CLayout("time.h", "fcntl.h", "poll.h")
            .Constants(typeof(time))
            .Constants(typeof(fcntl))
            .Raw($"static_assert(sizeof(struct pollfd) == {System.Runtime.InteropServices.Marshal.SizeOf<Tmds.Linux.pollfd>()}, \"sizeof(struct pollfd): Tmds.Linux.pollfd, which sys_poll.poll takes\");")
            .Compile("clock_file");
    }

    [Fact]
    public void CapabilityAndRlimitStructs()
    {
        new CLayout("linux/capability.h", "sys/resource.h")
            .Struct<__user_cap_header_struct>("struct __user_cap_header_struct")
            .Struct<__user_cap_data_struct>("struct __user_cap_data_struct")
            .Struct<rlimit>("struct rlimit")
            .Constants(typeof(linux_capability))
            .Constants(typeof(sys_resource))
            .Compile("capability");
    }

    [Fact]
    public void AMismatchFailsWithGccNamingTheField()
    {
        // The helper itself: a wrong offset must fail, and gcc's message must name the field.
        var c = new CLayout("sys/socket.h").Raw("struct lab_probe { int a; int b; };")
            .Raw("static_assert(offsetof(struct lab_probe, b) == 8, \"offsetof(struct lab_probe, b): C# says 8\");");
        var e = Assert.ThrowsAny<Exception>(() => c.Compile("probe"));
        Assert.Contains("offsetof(struct lab_probe, b)", e.Message);
    }
}
