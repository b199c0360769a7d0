using System.CommandLine;

namespace Lab.Cli.Commands;

/// <summary><c>lab doctor</c>: what this machine has and lacks for each chapter; exit status 0 when every chapter can run fully.</summary>
static class DoctorCommand
{
    public static Command Create()
    {
        var notebooks = new Option<string?>("--notebooks") { Description = "Folder of chapters (NN-*.ipynb). Defaults to notebooks/." };
        var command = new Command("doctor", "Check this machine: kernel, capabilities, sysctls, tools, the Jupyter kernelspec, and which chapters can run.")
        {
            notebooks,
        };
        command.SetAction(parse =>
        {
            var dir = parse.GetValue(notebooks) ?? Path.Combine(Repo.Root(), "notebooks");
            var report = Doctor.Doctor.Examine(dir);
            Console.Write(Doctor.Doctor.Render(report));
            return report.AllFull ? 0 : 1;
        });
        return command;
    }
}
