from lemcosim.federates.common.app import main
from lemcosim.federates.grid.federate import GridFederate

main(GridFederate)
