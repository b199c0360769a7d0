using System.Runtime.InteropServices;
using Lab.Interop;
using Lab.Sockets;
using System.Globalization;
using System.Text;
using static Tmds.Linux.LibC;

namespace Lab.Observe;

/// <summary>A sysctl a chapter discusses: its dotted name, what it means, and the values the kernel accepts.</summary>
public sealed record KnownSysctl(string Name, string Meaning, long Min, long Max, int ValueCount = 1)
{
    public override string ToString() => $"{Name} ({Min}..{Max}): {Meaning}";
}

/// <summary>Why a sysctl could not be read or written.</summary>
public enum SysctlFailure { UnknownName, NeedsPrivilege, ReadOnly, InvalidValue, Other }

/// <summary>A sysctl read or write that failed; <see cref="Failure"/> says which way, the message what to do.</summary>
public sealed class SysctlException : ObserveException
{
    public string Name { get; }
    public SysctlFailure Failure { get; }

    public SysctlException(string name, SysctlFailure failure, string message, int errno = 0, Exception? inner = null)
        : base(message, errno, inner) { Name = name; Failure = failure; }
}

/// <summary>
/// Kernel tunables under /proc/sys, by their dotted names ("net.core.somaxconn"), as `sysctl` spells them.
/// <see cref="Set(string, string)"/> returns a scope that puts the old value back when disposed.
/// Sysctls under net.* are per network namespace: /proc/sys is the caller's namespace.
/// </summary>
public static class Sysctl
{
    /// <summary>The sysctls the chapters discuss.</summary>
    public static IReadOnlyList<KnownSysctl> Known { get; } =
    [
        new("net.core.somaxconn", "Upper limit on any listen() backlog: the accept queue holds min(backlog, somaxconn) (+1).", 0, int.MaxValue),
        new("net.ipv4.tcp_max_syn_backlog", "Upper limit on the SYN queue (request sockets per listener), together with the backlog.", 0, int.MaxValue),
        new("net.ipv4.tcp_syncookies", "0: never send SYN cookies; 1: when the SYN queue overflows; 2: always.", 0, 2),
        new("net.ipv4.tcp_abort_on_overflow", "1: answer a final ACK with RST when the accept queue is full; 0: drop it and let the client retry.", 0, 1),
        new("net.ipv4.tcp_synack_retries", "How many times a listener resends a SYN-ACK before dropping the request socket.", 0, 255),
        new("net.ipv4.tcp_syn_retries", "How many times connect() resends a SYN before failing with ETIMEDOUT.", 1, 127),
        new("net.ipv4.ip_local_port_range", "The ephemeral ports connect() picks from: two numbers, low and high.", 1, 65535, 2),
        new("net.ipv4.tcp_migrate_req", "1: when an SO_REUSEPORT listener closes, move its queued requests to another listener on the port.", 0, 1),
    ];

    /// <summary>The /proc/sys file of a dotted name ("net.core.somaxconn" → /proc/sys/net/core/somaxconn).
    /// A name with '/' is taken as a path under /proc/sys (for components with dots, like VLAN interface names).</summary>
    public static string PathOf(string name)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        if (name.Contains("..", StringComparison.Ordinal) || name.StartsWith('.') || name.StartsWith('/') && !name.StartsWith("/proc/sys/", StringComparison.Ordinal))
            throw new SysctlException(name, SysctlFailure.UnknownName, $"'{name}' is not a sysctl name (expected e.g. \"net.core.somaxconn\").");
        if (name.StartsWith("/proc/sys/", StringComparison.Ordinal)) return name;
        return "/proc/sys/" + (name.Contains('/') ? name : name.Replace('.', '/'));
    }

    /// <summary>True when this kernel has the sysctl (its /proc/sys file exists): a sysctl added in a later
    /// Linux (tcp_syn_linear_timeouts in 6.5, tcp_migrate_req in 5.14) is absent on an older one.</summary>
    public static bool Exists(string name) => File.Exists(PathOf(name));

    /// <summary>The sysctl's current value, whitespace as the kernel prints it but without the trailing newline.</summary>
    public static string Read(string name)
    {
        var path = PathOf(name);
        try { return File.ReadAllText(path).TrimEnd('\n'); }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new SysctlException(name, SysctlFailure.UnknownName,
                $"{name}: no such sysctl on this kernel ({path} does not exist). Check the spelling with `sysctl -a | grep {LastPart(name)}`.", Lab.Interop.errno.ENOENT, e);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new SysctlException(name, SysctlFailure.NeedsPrivilege, $"{name}: reading it needs root. Run as root.", Lab.Interop.errno.EACCES, e);
        }
    }

    /// <summary>The sysctl's value as a number; throws if it is not a single integer (ip_local_port_range is two: use <see cref="ReadInts"/>).</summary>
    public static long ReadInt(string name)
    {
        var text = Read(name).Trim();
        return long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v) ? v
            : throw new SysctlException(name, SysctlFailure.Other, $"{name} is '{text}', not a single integer.");
    }

    /// <summary>A sysctl holding several integers (net.ipv4.ip_local_port_range → [32768, 60999]).</summary>
    public static IReadOnlyList<long> ReadInts(string name) =>
        Read(name).Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries)
            .Select(p => long.TryParse(p, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v) ? v
                : throw new SysctlException(name, SysctlFailure.Other, $"{name} holds '{p}', not an integer.")).ToList();

    /// <summary>Sets a numeric sysctl; dispose the scope to put the old value back.</summary>
    public static SysctlScope Set(string name, long value) => Set(name, value.ToString(CultureInfo.InvariantCulture));

    /// <summary>
    /// Sets a sysctl (checking a known sysctl's range first) and returns a scope that restores the old value on Dispose.
    /// Needs root (CAP_NET_ADMIN for net.*, CAP_SYS_ADMIN for the rest).
    /// </summary>
    public static SysctlScope Set(string name, string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        Validate(name, value);
        var old = Read(name);
        // The file is opened here, on the caller's thread, and kept open: /proc/sys/net/* resolves to the network
        // namespace of the thread that opens it, so the scope restores the value in that same namespace even when
        // it is disposed from another thread (a value set inside NetHost.Run and restored from the notebook's thread).
        var fd = OpenForWrite(name, value);
        try { WriteAt(fd, name, value); }
        catch { fd.Dispose(); throw; }
        return new SysctlScope(name, old, value, fd);
    }

    /// <summary>Checks a value against a known sysctl's range without writing it.</summary>
    public static void Validate(string name, string value)
    {
        var known = Known.FirstOrDefault(k => k.Name == Normalize(name));
        if (known is null) return;
        var parts = value.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
        string range = known.ValueCount == 1 ? $"{known.Min}..{known.Max}" : $"{known.ValueCount} integers, each {known.Min}..{known.Max}";
        if (parts.Length != known.ValueCount)
            throw new SysctlException(name, SysctlFailure.InvalidValue, $"{name} = '{value}' is out of range: it takes {range}. Nothing was written.");
        foreach (var p in parts)
            if (!long.TryParse(p, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v) || v < known.Min || v > known.Max)
                throw new SysctlException(name, SysctlFailure.InvalidValue,
                    $"{name} = '{value}' is out of range: valid values are {range} ({known.Meaning}). Nothing was written.");
        if (known.ValueCount == 2 && long.Parse(parts[0], CultureInfo.InvariantCulture) > long.Parse(parts[1], CultureInfo.InvariantCulture))
            throw new SysctlException(name, SysctlFailure.InvalidValue, $"{name} = '{value}': the low end is above the high end. Nothing was written.");
    }

    static string Normalize(string name) => name.Replace('/', '.');
    static string LastPart(string name) => name.Split('.', '/').Last();

    /// <summary>Opens the sysctl's file for writing in the calling thread's namespaces.</summary>
    internal static unsafe Microsoft.Win32.SafeHandles.SafeFileHandle OpenForWrite(string name, string value)
    {
        var path = PathOf(name);
        var pathBytes = Encoding.UTF8.GetBytes(path + "\0");
        const int O_WRONLY = 1, O_CLOEXEC = 0x80000;
        int fd;
        fixed (byte* p = pathBytes) fd = open(p, O_WRONLY | O_CLOEXEC, 0);
        if (fd < 0)
        {
            int e = Marshal.GetLastPInvokeError();
            if (e is Lab.Interop.errno.EACCES && IsReadOnly(path))
                throw new SysctlException(name, SysctlFailure.ReadOnly, $"{name} is read-only: the kernel only reports it (mode {File.GetUnixFileMode(path)}).", e);
            throw WriteFailure(name, value, e);
        }
        return new Microsoft.Win32.SafeHandles.SafeFileHandle(fd, ownsHandle: true);
    }

    /// <summary>pwrite(2) at offset 0 on a file from <see cref="OpenForWrite"/> (sysctl ignores writes at a later offset).</summary>
    internal static unsafe void WriteAt(Microsoft.Win32.SafeHandles.SafeFileHandle handle, string name, string value)
    {
        var bytes = Encoding.ASCII.GetBytes(value + "\n");
        long n;
        bool added = false;
        handle.DangerousAddRef(ref added);
        try { fixed (byte* b = bytes) n = pwrite((int)handle.DangerousGetHandle(), b, (Tmds.Linux.size_t)bytes.Length, 0); }
        finally { if (added) handle.DangerousRelease(); }
        if (n < 0) throw WriteFailure(name, value, Marshal.GetLastPInvokeError());
        if (n != bytes.Length) throw new SysctlException(name, SysctlFailure.Other, $"{name}: only {n} of {bytes.Length} bytes of '{value}' were written.");
    }

    /// <summary>Writes with open(2)/write(2) so the errno is the kernel's own: EINVAL (rejected value), EACCES/EPERM, EROFS.</summary>
    internal static void Write(string name, string value)
    {
        using var handle = OpenForWrite(name, value);
        WriteAt(handle, name, value);
    }

    static bool IsReadOnly(string path)
    {
        try { return (File.GetUnixFileMode(path) & (UnixFileMode.UserWrite | UnixFileMode.GroupWrite | UnixFileMode.OtherWrite)) == 0; }
        catch (IOException) { return false; }
    }

    static SysctlException WriteFailure(string name, string value, int e)
    {
        var known = Known.FirstOrDefault(k => k.Name == Normalize(name));
        return e switch
        {
            Lab.Interop.errno.ENOENT => new SysctlException(name, SysctlFailure.UnknownName,
                $"{name}: no such sysctl on this kernel. Check the spelling with `sysctl -a | grep {LastPart(name)}`.", e),
            Lab.Interop.errno.EACCES or Lab.Interop.errno.EPERM or Lab.Interop.errno.EROFS => new SysctlException(name, SysctlFailure.NeedsPrivilege,
                $"{name}: writing it was refused ({ErrnoNames.NameAndText(e)}): it needs root (CAP_NET_ADMIN for net.*) — run as root or in the devcontainer with --cap-add NET_ADMIN" +
                (e == Lab.Interop.errno.EROFS ? "; /proc/sys is mounted read-only here (a container without that capability)" : "") + ".", e),
            Lab.Interop.errno.EINVAL or Lab.Interop.errno.ERANGE => new SysctlException(name, SysctlFailure.InvalidValue,
                $"{name}: the kernel rejected '{value}' ({ErrnoNames.NameAndText(e)})" + (known is null ? "" : $"; valid values are {known.Min}..{known.Max}") + ". The value is unchanged.", e),
            _ => new SysctlException(name, SysctlFailure.Other, $"{name}: writing '{value}' failed: {ErrnoNames.NameAndText(e)}.", e),
        };
    }
}

/// <summary>
/// A sysctl changed by <see cref="Sysctl.Set(string, string)"/>. Dispose puts the old value back (once; later calls do
/// nothing). Tracked in <see cref="LabResources"/>, so a cancelled notebook cell restores it too.
/// </summary>
public sealed class SysctlScope : IDisposable
{
    int _disposed;
    readonly Microsoft.Win32.SafeHandles.SafeFileHandle? _file;

    internal SysctlScope(string name, string oldValue, string newValue, Microsoft.Win32.SafeHandles.SafeFileHandle? file = null)
    {
        _file = file;
        Name = name;
        OldValue = oldValue;
        NewValue = newValue;
        LabResources.Track(this, "SysctlScope");
    }

    public string Name { get; }
    /// <summary>The value before Set, restored on Dispose.</summary>
    public string OldValue { get; }
    public string NewValue { get; }
    public bool Restored => _disposed != 0;

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        try
        {
            if (_file is null) Sysctl.Write(Name, OldValue);
            else
            {
                // Through the file opened by Set: the same network namespace, whichever thread disposes.
                try { Sysctl.WriteAt(_file, Name, OldValue); }
                catch (SysctlException e) when (e.Failure == SysctlFailure.UnknownName) { /* its namespace is gone, and the value with it */ }
            }
        }
        finally { _file?.Dispose(); LabResources.Untrack(this); }
    }

    public override string ToString() => $"{Name} = {NewValue} (was {OldValue}{(Restored ? ", restored" : "")})";
}
