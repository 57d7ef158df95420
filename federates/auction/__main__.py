from lemcosim.federates.auction.cc import ClusterCoordinator
from lemcosim.federates.auction.dso import SystemOperator
from lemcosim.federates.auction.kg import KeyGenerator
from lemcosim.federates.auction.mo import MarketOperator
from lemcosim.federates.auction.pt import ProsumerTerminals
from lemcosim.federates.common.app import main

ROLES = {"auction_kg": KeyGenerator, "auction_cc": ClusterCoordinator,
         "auction_mo": MarketOperator, "auction_dso": SystemOperator,
         "auction_pt": ProsumerTerminals}

main(lambda settings: ROLES[settings.type](settings))
