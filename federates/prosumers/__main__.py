from lemcosim.federates.common.app import main
from lemcosim.federates.prosumers.federate import ProsumerFederate

main(ProsumerFederate)
