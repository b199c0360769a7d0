using System.Diagnostics;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using Lab.Interop;

namespace Lab.Tests.Interop;

/// <summary>
/// The netlink and inet_diag structs the lab reads, proven against the kernel headers: a C program generated from
/// the C# declarations static_asserts sizeof, offsetof and the size of every field, and the value of every constant.
/// gcc's error names the struct and field that disagree.
/// </summary>
public class NetlinkLayoutTests(ITestOutputHelper output)
{
    static readonly Type[] Structs =
    [
        typeof(sockaddr_nl), typeof(nlmsghdr), typeof(nlmsgerr), typeof(nlattr),
        typeof(inet_diag_sockid), typeof(inet_diag_req), typeof(inet_diag_req_v2), typeof(inet_diag_msg), typeof(inet_diag_bc_op),
        typeof(rtattr), typeof(ifinfomsg), typeof(rtgenmsg), typeof(ifaddrmsg),
        typeof(sock_filter), typeof(sock_fprog), typeof(tpacket_stats), typeof(mallinfo2),
    ];

    static readonly Type[] ConstantClasses =
        [typeof(netlink), typeof(sock_diag), typeof(inet_diag), typeof(rtnetlink), typeof(if_addr), typeof(if_link), typeof(filter)];

    const string Includes = """
        #include <stddef.h>
        #include <sys/socket.h>
        #include <linux/netlink.h>
        #include <linux/sock_diag.h>
        #include <linux/inet_diag.h>
        #include <linux/rtnetlink.h>
        #include <linux/if_addr.h>
        #include <linux/if_link.h>
        #include <linux/if.h>
        #include <linux/filter.h>
        #include <linux/if_packet.h>
        #include <linux/if_ether.h>
        #include <malloc.h>

        """;

    /// <summary>The asserts, from the C# side. <paramref name="skew"/> shifts one field's expected offset (to test the test).</summary>
    static string Program(string? skew = null)
    {
        var c = new StringBuilder(Includes);
        foreach (var t in Structs)
        {
            c.AppendLine($"_Static_assert(sizeof(struct {t.Name}) == {Marshal.SizeOf(t)}, \"sizeof(struct {t.Name}): C# says {Marshal.SizeOf(t)}\");");
            foreach (var f in t.GetFields(BindingFlags.Public | BindingFlags.Instance))
            {
                int offset = (int)Marshal.OffsetOf(t, f.Name) + ($"{t.Name}.{f.Name}" == skew ? 1 : 0);
                var fixedBuffer = f.GetCustomAttribute<FixedBufferAttribute>();
                int size = fixedBuffer is null ? Marshal.SizeOf(f.FieldType) : fixedBuffer.Length * Marshal.SizeOf(fixedBuffer.ElementType);
                c.AppendLine($"_Static_assert(offsetof(struct {t.Name}, {f.Name}) == {offset}, \"{t.Name}.{f.Name}: C# offset {offset}\");");
                c.AppendLine($"_Static_assert(sizeof(((struct {t.Name}*)0)->{f.Name}) == {size}, \"{t.Name}.{f.Name}: C# size {size}\");");
            }
        }
        foreach (var k in ConstantClasses)
            foreach (var f in k.GetFields(BindingFlags.Public | BindingFlags.Static).Where(f => f.IsLiteral))
            {
                var v = Convert.ToUInt64(f.GetRawConstantValue());
                c.AppendLine($"_Static_assert((unsigned long long)({f.Name}) == {v}ULL, \"{k.Name}.{f.Name}: C# value {v}\");");
            }
        c.AppendLine("int main(void) { return 0; }");
        return c.ToString();
    }

    static (int Exit, string Errors) Compile(string source)
    {
        var dir = Directory.CreateTempSubdirectory("lab-layout-");
        try
        {
            var file = Path.Combine(dir.FullName, "layout.c");
            File.WriteAllText(file, source);
            var psi = new ProcessStartInfo("gcc", ["-std=c11", "-fsyntax-only", file]) { RedirectStandardError = true, RedirectStandardOutput = true };
            using var p = Process.Start(psi)!;
            var err = p.StandardError.ReadToEndAsync();
            if (!p.WaitForExit(TimeSpan.FromSeconds(60))) { p.Kill(true); throw new TimeoutException("gcc took over 60 s"); }
            return (p.ExitCode, err.Result);
        }
        finally { dir.Delete(recursive: true); }
    }

    [Fact]
    public void EveryFieldAndConstantMatchesTheKernelHeaders()
    {
        Assert.SkipUnless(File.Exists("/usr/include/linux/inet_diag.h"), "kernel headers (linux-libc-dev) are not installed");
        var source = Program();
        int asserts = source.Split('\n').Count(l => l.StartsWith("_Static_assert"));
        var (exit, errors) = Compile(source);
        output.WriteLine($"{asserts} static asserts");
        Assert.True(exit == 0, errors);
        Assert.True(asserts > 80, $"only {asserts} asserts were generated");
    }

    [Fact]
    public void AWrongOffsetFailsAndGccNamesTheField()
    {
        Assert.SkipUnless(File.Exists("/usr/include/linux/inet_diag.h"), "kernel headers (linux-libc-dev) are not installed");
        var (exit, errors) = Compile(Program(skew: "inet_diag_msg.idiag_inode"));
        Assert.NotEqual(0, exit);
        Assert.Contains("inet_diag_msg.idiag_inode: C# offset 69", errors);
    }
}
