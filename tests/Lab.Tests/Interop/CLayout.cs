using System.Diagnostics;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;

namespace Lab.Tests.Interop;

/// <summary>
/// Proves C# layouts and constants against the C headers: emits static_asserts from the C# side, compiles them with
/// gcc, and fails with gcc's own message (which names the field or constant) when they disagree.
/// </summary>
public sealed class CLayout
{
    readonly StringBuilder _c = new();

    public CLayout(params string[] includes)
    {
        _c.AppendLine("#define _GNU_SOURCE");
        foreach (var i in includes) _c.AppendLine($"#include <{i}>");
        _c.AppendLine("#include <stddef.h>");
        _c.AppendLine("#include <assert.h>");
    }

    /// <summary>Raw C (extra declarations).</summary>
    public CLayout Raw(string code) { _c.AppendLine(code); return this; }

    /// <summary>static_assert sizeof(cType) and offsetof(cType, f) for every public instance field of <typeparamref name="T"/>.</summary>
    /// <param name="rename">C# field name to C field name, where they differ.</param>
    /// <param name="skip">Fields that cannot be asserted (bitfields), with the reason in the caller.</param>
    public CLayout Struct<T>(string cType, IReadOnlyDictionary<string, string>? rename = null, ISet<string>? skip = null, bool checkSize = true) where T : struct
    {
        int size = Marshal.SizeOf<T>();
        if (checkSize) _c.AppendLine($"static_assert(sizeof({cType}) == {size}, \"sizeof({cType}): C# {typeof(T).Name} is {size} bytes\");");
        foreach (var f in typeof(T).GetFields(BindingFlags.Public | BindingFlags.Instance))
        {
            if (skip?.Contains(f.Name) == true) continue;
            var cName = rename != null && rename.TryGetValue(f.Name, out var r) ? r : f.Name;
            long off = Marshal.OffsetOf<T>(f.Name).ToInt64();
            _c.AppendLine($"static_assert(offsetof({cType}, {cName}) == {off}, \"offsetof({cType}, {cName}): C# {typeof(T).Name}.{f.Name} is at {off}\");");
            int fsize = FieldSize(f.FieldType);
            if (fsize > 0)
                _c.AppendLine($"static_assert(sizeof((({cType}*)0)->{cName}) == {fsize}, \"sizeof {cType}.{cName}: C# {typeof(T).Name}.{f.Name} is {fsize} bytes\");");
        }
        return this;
    }

    static int FieldSize(Type t)
    {
        if (t.IsEnum) t = Enum.GetUnderlyingType(t);
        if (t.IsPrimitive) return Marshal.SizeOf(t);
        var fixedBuf = t.GetCustomAttribute<System.Runtime.CompilerServices.UnsafeValueTypeAttribute>() != null ? t : null;
        if (fixedBuf != null) return Marshal.SizeOf(t);
        return -1;
    }

    /// <summary>static_assert every public const of <paramref name="holder"/> (or each enum member) equals the C constant of the same name.</summary>
    public CLayout Constants(Type holder, ISet<string>? skip = null, Func<string, string>? cName = null)
    {
        if (holder.IsEnum)
        {
            foreach (var name in Enum.GetNames(holder))
            {
                if (skip?.Contains(name) == true) continue;
                var v = Convert.ToUInt64(Enum.Parse(holder, name));
                var c = cName?.Invoke(name) ?? name;
                _c.AppendLine($"static_assert((unsigned long long)({c}) == {v}ULL, \"{c}: C# {holder.Name}.{name} is {v}\");");
            }
            return this;
        }
        foreach (var f in holder.GetFields(BindingFlags.Public | BindingFlags.Static).Where(f => f.IsLiteral))
        {
            if (skip?.Contains(f.Name) == true) continue;
            var raw = f.GetRawConstantValue()!;
            string lit = raw switch { int i => $"{i}", uint u => $"{u}U", byte b => $"{b}", long l => $"{l}LL", ulong ul => $"{ul}ULL", _ => raw.ToString()! };
            var c = cName?.Invoke(f.Name) ?? f.Name;
            _c.AppendLine($"static_assert(({c}) == {lit}, \"{c}: C# {holder.Name}.{f.Name} is {raw}\");");
        }
        return this;
    }

    public string Source => _c.ToString();

    /// <summary>Compiles the asserts; fails the test with gcc's message (and keeps the file) on any mismatch.</summary>
    public void Compile(string name)
    {
        var dir = Directory.CreateTempSubdirectory("lab-clayout-").FullName;
        var file = Path.Combine(dir, name + ".c");
        File.WriteAllText(file, Source);
        var psi = new ProcessStartInfo("gcc", $"-std=c11 -fsyntax-only -Wall \"{file}\"") { RedirectStandardError = true, RedirectStandardOutput = true };
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("gcc did not start: install gcc (apt-get install gcc)");
        var err = p.StandardError.ReadToEndAsync();
        var outp = p.StandardOutput.ReadToEndAsync();
        if (!p.WaitForExit(60_000)) { p.Kill(); Assert.Fail($"gcc took over 60 s on {file}"); }
        if (p.ExitCode != 0) Assert.Fail($"gcc rejected {file} (kept for reading):\n{err.Result}{outp.Result}");
        if (Environment.GetEnvironmentVariable("LAB_CLAYOUT_KEEP") == "1") Console.Error.WriteLine($"CLayout: kept {file}");
        else Directory.Delete(dir, true);
    }
}
