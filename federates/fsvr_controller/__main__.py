from lemcosim.federates.common.app import main
from lemcosim.federates.fsvr_controller.federate import FsvrControllerFederate

main(FsvrControllerFederate)
