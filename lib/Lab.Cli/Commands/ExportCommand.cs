using System.CommandLine;
using Lab.Cli.Export;
using Lab.Cli.Notebooks;

namespace Lab.Cli.Commands;

/// <summary>
/// Registered in Program.cs, like every verb.
/// <c>lab export 02 --to cs</c>: writes chapter 02 as a .NET 10 file-based app, artifacts/export/02-….cs by default,
/// which <c>dotnet run</c> runs top to bottom, printing each cell's value and check (<see cref="ChapterExport"/>).
/// </summary>
public static class ExportCommand
{
    public static Command Create()
    {
        var chapter = new Argument<string>("chapter") { Description = "A chapter's number (02) or a notebook's path." };
        var to = new Option<string>("--to") { Description = "What to write: cs (a .NET 10 file-based app, run with `dotnet run FILE.cs`). Defaults to cs.", DefaultValueFactory = _ => "cs" };
        var output = new Option<string?>("--out", "-o") { Description = "The file to write, or a folder for NN-slug.cs. Defaults to artifacts/export/." };
        var notebooks = new Option<string?>("--notebooks") { Description = "Folder of chapters (NN-*.ipynb). Defaults to notebooks/." };
        var command = new Command("export", "Write a chapter as a C# program that runs without a notebook front end (dotnet run).") { chapter, to, output, notebooks };
        command.SetAction(parse =>
        {
            var err = parse.InvocationConfiguration.Error;
            var outw = parse.InvocationConfiguration.Output;
            if (parse.GetValue(to) is not "cs") { err.WriteLine($"lab export: --to {parse.GetValue(to)}: only cs is supported"); return 2; }
            var root = Repo.Root();
            var which = parse.GetValue(chapter)!;
            var folder = Path.GetFullPath(parse.GetValue(notebooks) ?? Path.Combine(root, "notebooks"));
            string? path = File.Exists(which) ? which
                : Directory.Exists(folder) ? NotebookRunner.Chapters(folder).FirstOrDefault(p => Number(Path.GetFileName(p)) is { } n && int.TryParse(which, out var w) && n == w)
                : null;
            if (path == null) { err.WriteLine($"lab export: {which}: no such notebook, and no chapter numbered {which} in {folder}"); return 2; }
            var nb = Notebook.Load(path);
            var name = Path.GetFileNameWithoutExtension(path) + ".cs";
            var target = parse.GetValue(output) is { } o
                ? (Directory.Exists(o) || o.EndsWith('/') ? Path.Combine(o, name) : o)
                : Path.Combine(root, "artifacts", "export", name);
            target = Path.GetFullPath(target);
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            var result = ChapterExport.ToFileBasedApp(nb, target, Path.Combine(root, "lib", "Lab", "Lab.csproj"));
            File.WriteAllText(target, result.Source);
            outw.WriteLine($"wrote {target}");
            outw.WriteLine($"run it: dotnet run {Path.GetRelativePath(Directory.GetCurrentDirectory(), target)}");
            if (result.Errors.Count == 0) return 0;
            err.WriteLine($"lab export: the C# compiler finds {result.Errors.Count} error(s) in it:");
            foreach (var e in result.Errors.Take(20)) err.WriteLine("  " + e);
            return 1;
        });
        return command;
    }

    /// <summary>The NN of "NN-slug.ipynb".</summary>
    static int? Number(string file)
    {
        var dash = file.IndexOf('-');
        return dash > 0 && int.TryParse(file[..dash], out var n) ? n : null;
    }
}
