# Put in front of the GIMP check scripts (they reach GIMP as code on stdin, so they cannot import
# this): runs a PDB procedure non-interactively, as a script would.
from gi.repository import Gimp


def run_pdb(name, **arguments):
    """(succeeded, error message) of the procedure `name` run with these arguments."""
    procedure = Gimp.get_pdb().lookup_procedure(name)
    config = procedure.create_config()
    config.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    for key, value in arguments.items():
        if key == "drawables":
            config.set_core_object_array("drawables", value)
        else:
            config.set_property(key, value)
    result = procedure.run(config)
    status = result.index(0)
    message = result.index(1) if status != Gimp.PDBStatusType.SUCCESS and result.length() > 1 else ""
    return status == Gimp.PDBStatusType.SUCCESS, str(message)
