from lemcosim.federates.amm.federate import AmmFederate
from lemcosim.federates.common.app import main

main(AmmFederate)
